//! Who may do what: one table, [`PERMISSIONS`]. The README's role table is [`markdown_table`]'s output.
//!
//! Least privilege: running the box (users) and reading its data are separate roles, and so are
//! using the data and reviewing its use. A small department gives one person several roles, but never
//! admin together with a data role (supervisor, operator): [`super::users::mixes_admin_and_data`].

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub use crate::domain::role::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    Search,
    ViewRead,
    ViewImage,
    Export,
    PlaceHold,
    ReleaseHold,
    VerifyAlert,
    ManageHotlists,
    ManageUsers,
    ViewAudit,
    RequestRelease,
    ApproveRelease,
    /// The cameras' state on the Cameras page (images of the public road: a role of its own).
    ViewCameras,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Supervisor, Role::Operator, Role::Auditor, Role::Installer];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Supervisor => "supervisor",
            Role::Operator => "operator",
            Role::Auditor => "auditor",
            Role::Installer => "installer",
        }
    }
}

impl Permission {
    pub const ALL: [Permission; 13] = [
        Permission::Search,
        Permission::ViewRead,
        Permission::ViewImage,
        Permission::Export,
        Permission::PlaceHold,
        Permission::ReleaseHold,
        Permission::VerifyAlert,
        Permission::ManageHotlists,
        Permission::ManageUsers,
        Permission::ViewAudit,
        Permission::RequestRelease,
        Permission::ApproveRelease,
        Permission::ViewCameras,
    ];

    /// The serde name, so logs, audit details and the README spell it one way.
    pub fn as_str(self) -> &'static str {
        match self {
            P::Search => "search",
            P::ViewRead => "view_read",
            P::ViewImage => "view_image",
            P::Export => "export",
            P::PlaceHold => "place_hold",
            P::ReleaseHold => "release_hold",
            P::VerifyAlert => "verify_alert",
            P::ManageHotlists => "manage_hotlists",
            P::ManageUsers => "manage_users",
            P::ViewAudit => "view_audit",
            P::RequestRelease => "request_release",
            P::ApproveRelease => "approve_release",
            P::ViewCameras => "view_cameras",
        }
    }
}

use Permission as P;

/// The table. Anything not listed is refused.
pub const PERMISSIONS: &[(Role, &[Permission])] = &[
    (Role::Admin, &[P::ManageUsers, P::ViewCameras]),
    (
        Role::Supervisor,
        &[
            P::Search,
            P::ViewRead,
            P::ViewImage,
            P::Export,
            P::PlaceHold,
            P::ReleaseHold,
            P::VerifyAlert,
            P::ManageHotlists,
            P::RequestRelease,
            P::ApproveRelease,
        ],
    ),
    (Role::Operator, &[P::Search, P::ViewRead, P::ViewImage, P::PlaceHold, P::VerifyAlert, P::RequestRelease]),
    (Role::Auditor, &[P::ViewAudit]),
    (Role::Installer, &[P::ViewCameras]),
];

pub fn permissions(role: Role) -> &'static [Permission] {
    PERMISSIONS.iter().find(|(r, _)| *r == role).map_or(&[], |(_, p)| p)
}

/// Whether any of the roles grants the permission.
pub fn may(roles: &[Role], p: Permission) -> bool {
    roles.iter().any(|r| permissions(*r).contains(&p))
}

/// The table as Markdown, permissions down, roles across: what the README shows.
pub fn markdown_table() -> String {
    let mut s = String::from("| permission |");
    for r in Role::ALL {
        s.push_str(&format!(" {} |", r.as_str()));
    }
    s.push_str("\n|---|");
    s.push_str(&":-:|".repeat(Role::ALL.len()));
    s.push('\n');
    for p in Permission::ALL {
        s.push_str(&format!("| {p} |"));
        for r in Role::ALL {
            s.push_str(if permissions(r).contains(&p) { " ✓ |" } else { "   |" });
        }
        s.push('\n');
    }
    s
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`, expected one of admin, supervisor, operator, auditor, installer")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Role, UnknownRole> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_what_the_readme_says() {
        let expected = "\
| permission | admin | supervisor | operator | auditor | installer |
|---|:-:|:-:|:-:|:-:|:-:|
| search |   | ✓ | ✓ |   |   |
| view_read |   | ✓ | ✓ |   |   |
| view_image |   | ✓ | ✓ |   |   |
| export |   | ✓ |   |   |   |
| place_hold |   | ✓ | ✓ |   |   |
| release_hold |   | ✓ |   |   |   |
| verify_alert |   | ✓ | ✓ |   |   |
| manage_hotlists |   | ✓ |   |   |   |
| manage_users | ✓ |   |   |   |   |
| view_audit |   |   |   | ✓ |   |
| request_release |   | ✓ | ✓ |   |   |
| approve_release |   | ✓ |   |   |   |
| view_cameras | ✓ |   |   |   | ✓ |
";
        assert_eq!(markdown_table(), expected);
    }

    #[test]
    fn key_separations() {
        assert!(may(&[Role::Auditor], P::ViewAudit));
        assert!(!may(&[Role::Auditor], P::Search));
        assert!(may(&[Role::Operator], P::Search));
        assert!(!may(&[Role::Operator], P::ManageUsers));
        assert!(!may(&[Role::Operator], P::ApproveRelease));
        assert!(!may(&[Role::Operator], P::ReleaseHold));
        assert!(!may(&[Role::Admin], P::Search), "running the box does not open its data");
        assert!(!may(&[], P::Search));
        for r in Role::ALL {
            assert_eq!(may(&[r], P::ManageUsers), r == Role::Admin, "{r}");
            assert_eq!(may(&[r], P::ViewAudit), r == Role::Auditor, "{r}");
        }
        assert!(may(&[Role::Admin, Role::Operator], P::Search), "roles combine");
        let installer = permissions(Role::Installer);
        assert_eq!(installer, [P::ViewCameras], "an installer sees cameras and nothing of stored reads");
    }

    #[test]
    fn every_role_has_a_row_and_every_permission_a_holder() {
        for r in Role::ALL {
            assert!(PERMISSIONS.iter().filter(|(x, _)| *x == r).count() == 1, "{r}");
        }
        for p in Permission::ALL {
            assert!(Role::ALL.iter().any(|r| permissions(*r).contains(&p)), "{p}");
        }
    }

    #[test]
    fn roles_parse_by_name() {
        for r in Role::ALL {
            assert_eq!(r.as_str().parse::<Role>(), Ok(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        for p in Permission::ALL {
            assert_eq!(serde_json::to_value(p).unwrap(), p.as_str());
        }
        assert_eq!("Admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }
}
