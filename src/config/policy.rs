//! The usage and privacy policy the department must post (Civil Code § 1798.90.51; policy 471.3.1 (g)),
//! rendered from the configuration that actually governs the box, so the posted text cannot drift
//! from what the box does.

use super::Config;

/// A role and what it may do, as the policy states it.
pub struct RoleLine {
    pub role: String,
    pub permissions: Vec<String>,
}

struct Section {
    title: &'static str,
    paragraphs: Vec<String>,
    list: Vec<String>,
}

fn sections(c: &Config, roles: &[RoleLine]) -> Vec<Section> {
    let r = &c.store.retention;
    let a = &c.access;
    let org = if c.site.organisation.is_empty() { "The agency".to_string() } else { c.site.organisation.clone() };
    vec![
        Section {
            title: "Purpose",
            paragraphs: vec![format!(
                "{org} operates automated licence plate readers (ALPR) at site `{}` (device `{}`) for official law \
                 enforcement purposes only: identifying stolen or wanted vehicles, stolen plates and missing persons, \
                 and investigating crimes.",
                c.site.site_id, c.site.device_id
            )],
            list: vec![],
        },
        Section {
            title: "Who may use the system",
            paragraphs: vec![
                "Only named users with a login may access ALPR data; each has one or more roles. A role may do only what is listed here:".into(),
            ],
            list: roles.iter().map(|l| format!("**{}**: {}", l.role, l.permissions.join(", "))).collect(),
        },
        Section {
            title: "Training",
            paragraphs: vec![format!(
                "No one may log in or act without current completion of: {}. Accounts lock after {} failed logins within {} minutes \
                 until an administrator unlocks them, and are disabled after {} days without use. Sessions end after {} minutes \
                 idle and {} hours in all.",
                a.required_courses.join(", "),
                a.lockout_failures,
                a.lockout_window_minutes,
                a.unused_account_days,
                c.api.session_idle_minutes,
                c.api.session_absolute_hours
            )],
            list: vec![],
        },
        Section {
            title: "Monitoring and records of access",
            paragraphs: vec![
                "Every login, search, view, export, hold, alert decision, hotlist, user and configuration change, release \
                 request and retention purge is written to a tamper-evident audit log: who (name and organisation), when \
                 (UTC), from where, what was searched (the plate or partial plate), why (purpose and case number), how \
                 many records were returned and the outcome. Searches require a purpose and a case or incident number."
                    .into(),
                format!("Permitted search purposes: {}.", c.api.search_purposes.join(", ")),
                "The audit log is kept at least as long as the data, is not purged with it, and is audited regularly.".into(),
            ],
            list: vec![],
        },
        Section {
            title: "Retention",
            paragraphs: vec![format!(
                "Reads are kept at least {} days and purged after {} days (Government Code § 34090.6), unless held as \
                 evidence in a criminal or civil action or subject to a discovery request; a hold records who placed it, when, \
                 the case number and the reason. Purges do not run while the clock is not trustworthy.",
                r.min_days,
                r.max_days.max(r.min_days)
            )],
            list: vec![],
        },
        Section {
            title: "Sharing and release",
            paragraphs: vec![
                format!(
                    "ALPR data is shared only with law enforcement or prosecutorial agencies in: {}, and only on a written \
                     request naming the agency, the person requesting and the intended purpose, reviewed and approved by a \
                     person other than the one who entered it. Approved requests are retained on file; each export carries \
                     the request id and a signed manifest of every file.",
                    a.allowed_jurisdictions.join(", ")
                ),
                "A hotlist hit must be verified (for example against the state system) before enforcement action.".into(),
            ],
            list: vec![],
        },
        Section {
            title: "Custodian",
            paragraphs: vec![format!(
                "Custodian of records: {}. Designee overseeing the ALPR operation: {}.",
                if a.custodian.is_empty() { "(not configured)" } else { &a.custodian },
                if a.designee.is_empty() { "(not configured)" } else { &a.designee }
            )],
            list: vec![],
        },
    ]
}

pub fn markdown(c: &Config, roles: &[RoleLine]) -> String {
    let mut out = String::from("# ALPR usage and privacy policy\n");
    for s in sections(c, roles) {
        out.push_str(&format!("\n## {}\n\n", s.title));
        for p in &s.paragraphs {
            out.push_str(p);
            out.push_str("\n\n");
        }
        for l in &s.list {
            out.push_str(&format!("- {l}\n"));
        }
    }
    out
}

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `**bold**` and `` `code` `` of the Markdown, escaped otherwise.
fn inline(s: &str) -> String {
    let e = escape(s);
    let mut out = String::new();
    for (i, part) in e.split("**").enumerate() {
        if i % 2 == 1 {
            out.push_str(&format!("<strong>{part}</strong>"));
        } else {
            for (j, p) in part.split('`').enumerate() {
                if j % 2 == 1 {
                    out.push_str(&format!("<code>{p}</code>"));
                } else {
                    out.push_str(p);
                }
            }
        }
    }
    out
}

/// The policy page's one style element; the console's Content-Security-Policy allows exactly this text
/// by its hash (no `'unsafe-inline'`), and the page stays one self-contained file for `policy --html`.
pub const HTML_STYLE: &str = "body{font-family:sans-serif;max-width:50em;margin:2em auto;line-height:1.5}";

pub fn html(c: &Config, roles: &[RoleLine]) -> String {
    let mut out = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>ALPR usage and privacy policy</title>\
         <style>{HTML_STYLE}</style></head><body>\
         <h1>ALPR usage and privacy policy</h1>"
    );
    for s in sections(c, roles) {
        out.push_str(&format!("<h2>{}</h2>", escape(s.title)));
        for p in &s.paragraphs {
            out.push_str(&format!("<p>{}</p>", inline(p)));
        }
        if !s.list.is_empty() {
            out.push_str("<ul>");
            for l in &s.list {
                out.push_str(&format!("<li>{}</li>", inline(l)));
            }
            out.push_str("</ul>");
        }
    }
    out.push_str("</body></html>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_states_what_the_config_enforces() {
        let mut c: Config = crate::config::load_texts(&[(
            std::path::Path::new("x.toml"),
            "[site]\nsite_id = \"s\"\ndevice_id = \"d\"\n",
        )])
        .unwrap()
        .config;
        c.store.retention.max_days = 400;
        c.access.allowed_jurisdictions = vec!["CA".into()];
        c.access.custodian = "Records <Unit>".into();
        let roles = [RoleLine { role: "auditor".into(), permissions: vec!["view audit log".into()] }];
        let md = markdown(&c, &roles);
        assert!(md.contains("at least 365 days and purged after 400 days"));
        assert!(md.contains("agencies in: CA"));
        assert!(md.contains("**auditor**: view audit log"));
        assert!(md.contains("ALPR operator"));
        let h = html(&c, &roles);
        assert!(h.contains("<strong>auditor</strong>"));
        assert!(h.contains("Records &lt;Unit&gt;"), "escaped");
        assert!(!h.contains("<Unit>"));
    }
}
