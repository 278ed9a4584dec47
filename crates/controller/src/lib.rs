//! previewd's work loop: claims due previews, observes, plans, executes, records.
#![forbid(unsafe_code)]
