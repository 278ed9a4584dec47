//! One conformance suite for every `Store` backend. Each case in `cases/`
//! is written once against `Arc<dyn Store>`; the macro below runs it as
//! `sqlite::<case>` on a fresh SQLite file and as `postgres::<case>` on a
//! fresh PostgreSQL database (which must be running: see `support`).

mod cases;
mod support;

macro_rules! conformance {
    (
        both: [$($case:ident),* $(,)?],
        both_with_sql: [$($sql_case:ident),* $(,)?],
        postgres_only: [$($pg_case:ident),* $(,)?] $(,)?
    ) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::support::run_sqlite(crate::cases::$case).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $sql_case() {
                    crate::support::run_sqlite_with(crate::cases::$sql_case).await;
                }
            )*
        }

        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    crate::support::run_postgres(crate::cases::$case).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $sql_case() {
                    crate::support::run_postgres_with(crate::cases::$sql_case).await;
                }
            )*
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $pg_case() {
                    crate::support::run_postgres(crate::cases::$pg_case).await;
                }
            )*
        }
    };
}

conformance! {
    both: [
        // desired state
        deploy_creates_a_pending_row_due_now,
        deploy_then_identical_resend_is_a_noop,
        changed_spec_bumps_generation_and_makes_the_row_due,
        destroy_marks_absent_once_and_a_redeploy_revives_the_same_names,
        look_alike_branches_get_different_slugs,
        branches_naming_one_issue_get_different_hosts,
        concurrent_deploys_still_get_distinct_names,
        list_filters_and_orders_by_project_then_branch,
        timestamps_and_status_round_trip,
        deployed_at_dates_the_generation_not_the_status,
        // schedule and leases
        claim_takes_only_due_rows_most_overdue_first,
        claim_respects_its_limit,
        a_leased_row_is_never_claimed_again_before_its_lease_ends,
        an_expired_lease_can_be_reclaimed_and_the_old_holder_loses,
        renew_lease_extends_only_a_lease_we_hold,
        record_status_with_a_lost_lease_writes_nothing,
        record_status_schedules_the_next_look_and_releases_the_lease,
        a_dispatch_during_a_reconcile_keeps_the_earlier_wake_up,
        next_due_is_when_a_row_can_next_be_claimed,
        rule_priorities_are_unique_per_listener,
        bad_input_is_refused_with_the_field_named,
        list_finds_expired_previews,
        gc_sightings_keep_the_first_and_forget_the_unseen,
        replicas_are_counted_by_heartbeat_and_dead_ones_forgotten,
        only_a_finished_teardown_can_be_leased_for_gc,
        a_free_sweep_lock_is_granted_and_given_back_on_drop,
        // outbox
        reports_are_enqueued_with_the_status_they_belong_to,
        outbox_delivers_in_order_one_message_per_preview,
        a_retried_message_waits_and_holds_back_its_successors,
        an_expired_outbox_lease_can_be_reclaimed,
        outbox_claim_respects_its_limit_oldest_first,
        github_deployments_are_kept_per_generation,
        a_retried_comment_holds_back_comments_not_reports,
        a_pull_request_is_kept_per_preview_until_forgotten,
        // events
        status_changes_are_kept_as_events_newest_first,
        events_are_pruned_to_the_newest_fifty_per_preview,
        a_status_write_with_a_lost_lease_notes_no_event,
        // webhook deliveries
        a_webhook_delivery_is_acted_on_once,
        a_body_replayed_under_a_fresh_id_is_a_duplicate,
        a_redelivered_destroy_is_a_duplicate_and_writes_nothing,
        a_close_older_than_the_redeploy_is_stale_and_the_preview_stays,
        a_close_after_the_deploy_applies_though_status_was_written_since,
        a_close_without_a_time_skips_the_staleness_rule,
        a_webhook_destroy_does_what_apply_destroy_does,
        deliveries_older_than_thirty_days_are_forgotten,
        a_delivery_breaking_a_bound_is_refused_with_the_field_named,
        // the one write path
        a_deploy_by_lifetime_counts_from_the_row_it_overwrites,
        a_write_that_makes_a_row_due_wakes_the_loop_and_a_no_op_does_not,
        a_labelled_deploy_is_recorded_and_never_rolls_a_newer_deploy_back,
        a_destroy_keeps_its_own_run_and_callback_for_the_report,
    ],
    // Cases that also reach the database directly (see `support::Sql`).
    both_with_sql: [
        a_failed_webhook_destroy_records_no_delivery,
        the_outbox_kind_is_stored_as_report_and_an_unknown_one_still_reads,
        pre_pool_rows_are_adopted_by_the_first_listener,
    ],
    postgres_only: [
        concurrent_claimers_never_share_a_row,
        concurrent_outbox_workers_keep_per_preview_order,
        only_one_replica_at_a_time_holds_the_sweep_lock,
        concurrent_sweepers_get_the_lock_exactly_once,
        concurrent_replays_of_one_body_destroy_once,
    ],
}
