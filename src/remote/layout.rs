//! Where harness keeps things on the server, beside the live directory.

/// Where things live on the server: all beside `remote_dir`, on the same filesystem, so a swap
/// is a rename and nothing of ours is inside the tree that is swapped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The live directory Passenger serves (`remote_dir`).
    pub live: String,
    /// `<parent>/.<name>.harness`
    pub home: String,
}

impl Layout {
    /// `remote_dir` must be absolute and not `/`.
    pub fn of(remote_dir: &str) -> Option<Layout> {
        let live = remote_dir.trim_end_matches('/');
        if !live.starts_with('/') || live.contains("/../") || live.ends_with("/..") {
            return None;
        }
        let (parent, name) = live.rsplit_once('/')?;
        if name.is_empty() || name == "." || name == ".." {
            return None;
        }
        Some(Layout {
            live: live.to_string(),
            home: format!("{parent}/.{name}.harness"),
        })
    }

    pub fn parent(&self) -> &str {
        match self.live.rsplit_once('/') {
            Some(("", _)) | None => "/",
            Some((p, _)) => p,
        }
    }

    fn at(&self, rel: &str) -> String {
        format!("{}/{rel}", self.home)
    }

    pub fn lock(&self) -> String {
        self.at("lock")
    }
    pub fn staging(&self) -> String {
        self.at("staging")
    }
    pub fn releases(&self) -> String {
        self.at("releases")
    }
    pub fn backups(&self) -> String {
        self.at("backups")
    }
    pub fn uploads(&self) -> String {
        self.at("uploads")
    }
    pub fn audit_log(&self) -> String {
        self.at("audit.log")
    }
    /// Production's data, outside every release (see `shared`).
    pub fn shared(&self) -> String {
        self.at("shared")
    }
    /// Production's database: `shared/<db>`, where every release's `<db>` links to.
    pub fn shared_db(&self, db: &str) -> String {
        format!("{}/{db}", self.shared())
    }
    /// The write pause's flag file; the packaged entry point looks for it (see `shared`).
    pub fn pause(&self) -> String {
        self.at("pause")
    }
}
