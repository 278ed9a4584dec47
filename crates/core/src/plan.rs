//! The pure planner; written next.
