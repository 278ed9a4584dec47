use super::super::load;
use super::*;
use previewd_core::access::RuleAuth;

const SECRET: &str = "k7-known-client-secret-value";

const OIDC: &str = r#"
[access]
kind = "oidc"
issuer = "https://idp.example.com"
authorization_endpoint = "https://idp.example.com/authorize"
token_endpoint = "https://idp.example.com/token"
user_info_endpoint = "https://idp.example.com/userinfo"
client_id = "previews"
client_secret_env = "PREVIEWD_OIDC_SECRET"
"#;

const COGNITO: &str = r#"
[access]
kind = "cognito"
user_pool_arn = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbC123"
user_pool_client_id = "4abc123def"
user_pool_domain = "acme-previews"
session_timeout_secs = 3600
on_unauthenticated = "deny"
"#;

fn read_env(text: &str, env: &[(&str, &str)]) -> Result<super::super::Config, Vec<Problem>> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("previewd.toml");
    std::fs::write(&path, text).unwrap();
    let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string()));
    load(Some(&path), env)
}

fn with_secret(text: &str) -> Result<super::super::Config, Vec<Problem>> {
    read_env(text, &[("PREVIEWD_OIDC_SECRET", SECRET)])
}

fn problems_of(text: &str, env: &[(&str, &str)]) -> Vec<(String, String)> {
    read_env(text, env)
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.key, p.message))
        .collect()
}

fn has(problems: &[(String, String)], key: &str, says: &str) -> bool {
    problems.iter().any(|(k, m)| k == key && m.contains(says))
}

#[test]
fn oidc_reads_its_secret_from_the_named_variable_and_never_prints_it() {
    let c = with_secret(OIDC).unwrap();
    let t = c.template();
    let access = t.access.clone().expect("access on");
    let RuleAuth::Oidc(o) = &access.auth else {
        panic!("{access:?}")
    };
    assert_eq!(o.client_id, "previews");
    assert_eq!(o.session.scope, "openid");
    assert_eq!(access.client_secret.as_ref().unwrap().expose(), SECRET);
    // The variable is a secret, not a PREVIEWD_ key override.
    for printed in [
        format!("{c:?}"),
        format!("{t:?}"),
        format!("{:?}", c.projects_served()),
        serde_json::to_string(&t).unwrap(),
    ] {
        assert!(!printed.contains(SECRET), "{printed}");
    }
}

#[test]
fn the_secret_may_come_from_a_file_without_its_trailing_newline() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let text = OIDC.replace(
        "client_secret_env = \"PREVIEWD_OIDC_SECRET\"",
        &format!("client_secret_file = {:?}", file.display().to_string()),
    );
    let c = read_env(&text, &[]).unwrap();
    let secret = c.template().access.unwrap().client_secret.unwrap();
    assert_eq!(secret.expose(), SECRET);
}

#[test]
fn cognito_takes_its_pool_and_no_secret() {
    let c = read_env(COGNITO, &[]).unwrap();
    let access = c.template().access.unwrap();
    let RuleAuth::Cognito(g) = &access.auth else {
        panic!()
    };
    assert_eq!(g.user_pool_domain, "acme-previews");
    assert_eq!(g.session.timeout_secs, 3600);
    assert_eq!(g.session.on_unauthenticated.as_str(), "deny");
    assert!(access.client_secret.is_none());
}

/// A file, its environment, the key a problem names and what it says.
type Case<'a> = (String, &'a [(&'a str, &'a str)], &'a str, &'a str);

#[test]
fn each_broken_rule_names_its_key() {
    let none: &[(&str, &str)] = &[];
    let secret = &[("PREVIEWD_OIDC_SECRET", SECRET)];
    let cases: Vec<Case> = vec![
        (
            OIDC.replace(
                "https://idp.example.com/token",
                "http://idp.example.com/token",
            ),
            secret,
            "access.token_endpoint",
            "https://",
        ),
        (
            OIDC.replace("issuer = \"https://idp.example.com\"\n", ""),
            secret,
            "access.issuer",
            "required",
        ),
        (
            OIDC.to_owned(),
            none,
            "access.client_secret_env",
            "PREVIEWD_OIDC_SECRET is not set",
        ),
        (
            OIDC.to_owned(),
            &[("PREVIEWD_OIDC_SECRET", " ")],
            "access.client_secret_env",
            "is empty",
        ),
        (
            OIDC.replace(
                "client_secret_env = \"PREVIEWD_OIDC_SECRET\"",
                "client_secret_file = \"/nonexistent/secret\"",
            ),
            none,
            "access.client_secret_file",
            "cannot read /nonexistent/secret",
        ),
        (
            format!("{OIDC}client_secret_file = \"/etc/hostname\"\n"),
            secret,
            "access.client_secret_env",
            "exactly one",
        ),
        (
            OIDC.replace("client_secret_env = \"PREVIEWD_OIDC_SECRET\"\n", ""),
            none,
            "access.client_secret_env",
            "is required",
        ),
        (
            format!("{OIDC}client_secret = \"{SECRET}\"\n"),
            secret,
            "access.client_secret",
            "secrets never sit in the file",
        ),
        (
            format!("{OIDC}user_pool_domain = \"x\"\n"),
            secret,
            "access.user_pool_domain",
            "not a key of kind = \"oidc\"",
        ),
        (
            format!("{COGNITO}client_secret_env = \"X\"\n"),
            none,
            "access.client_secret_env",
            "reads the app client's secret from the user pool",
        ),
        (
            COGNITO.replace("userpool/us-east-1_AbC123", "userpool/AbC123"),
            none,
            "access.user_pool_arn",
            "user pool ARN",
        ),
        (
            COGNITO.replace(
                "\"acme-previews\"",
                "\"https://acme.auth.us-east-1.amazoncognito.com\"",
            ),
            none,
            "access.user_pool_domain",
            "without https://",
        ),
        (
            COGNITO.replace("3600", "604801"),
            none,
            "access.session_timeout_secs",
            "604800",
        ),
        (
            COGNITO.replace("\"deny\"", "\"redirect\""),
            none,
            "access.on_unauthenticated",
            "\"deny\"",
        ),
        (
            format!("{COGNITO}session_cookie_name = \"a b\"\n"),
            none,
            "access.session_cookie_name",
            "[A-Za-z0-9_-]",
        ),
        (
            format!("[container]\nurl_scheme = \"http\"\n{COGNITO}"),
            none,
            "access.kind",
            "only on an HTTPS listener",
        ),
        (
            format!("{COGNITO}kind2 = 1\n"),
            none,
            "access.kind2",
            "unknown field",
        ),
    ];
    for (text, env, key, says) in cases {
        let problems = problems_of(&text, env);
        assert!(has(&problems, key, says), "{key} / {says}:\n{problems:#?}");
        for (_, m) in &problems {
            assert!(!m.contains(SECRET), "{m}");
        }
    }
}

#[test]
fn projects_inherit_access_override_keys_and_replace_it_by_kind() {
    let text = format!(
        r#"{OIDC}
[[projects]]
project = "acme/web"

[[projects]]
project = "acme/api"
[projects.access]
client_id = "api-previews"
client_secret_env = "API_SECRET"

[[projects]]
project = "acme/docs"
[projects.access]
kind = "none"

[[projects]]
project = "acme/admin"
[projects.access]
kind = "cognito"
user_pool_arn = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbC123"
user_pool_client_id = "4abc123def"
user_pool_domain = "acme-previews"
"#
    );
    let c = read_env(
        &text,
        &[
            ("PREVIEWD_OIDC_SECRET", SECRET),
            ("API_SECRET", "api-secret"),
        ],
    )
    .unwrap();
    let served = c.projects_served();
    let access = |name: &str| served.get(name).unwrap().template.access.clone();
    let web = access("acme/web").unwrap();
    assert_eq!(web.client_secret.unwrap().expose(), SECRET);
    let api = access("acme/api").unwrap();
    let RuleAuth::Oidc(o) = &api.auth else {
        panic!()
    };
    assert_eq!(
        (o.client_id.as_str(), o.issuer.as_str()),
        ("api-previews", "https://idp.example.com")
    );
    assert_eq!(api.client_secret.unwrap().expose(), "api-secret");
    assert_eq!(access("acme/docs"), None);
    assert!(matches!(
        access("acme/admin").unwrap().auth,
        RuleAuth::Cognito(_)
    ));
}

#[test]
fn a_project_on_plain_http_is_refused_its_inherited_access() {
    let text = format!(
        "{COGNITO}\n[[projects]]\nproject = \"acme/web\"\n[projects.container]\nurl_scheme = \"http\"\n"
    );
    let problems = problems_of(&text, &[]);
    assert!(
        has(
            &problems,
            "projects[0].container.url_scheme",
            "HTTPS listener"
        ),
        "{problems:#?}"
    );
}

#[test]
fn access_keys_can_come_from_the_environment() {
    let c = read_env(
        OIDC,
        &[
            ("PREVIEWD_OIDC_SECRET", SECRET),
            ("PREVIEWD_ACCESS_CLIENT_ID", "from-env"),
        ],
    )
    .unwrap();
    let RuleAuth::Oidc(o) = c.template().access.unwrap().auth else {
        panic!()
    };
    assert_eq!(o.client_id, "from-env");
}
