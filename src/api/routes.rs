//! Route handlers. Each checks the session and the role table, audits, then answers.
//!
//! The record must say what happened: a change is checked first (the alert exists and is undecided, the
//! hold exists and is not released…), and a refused or impossible one leaves one entry with outcome
//! `denied` or `error` and why. Only then is `ok` recorded and the change made; should the store still
//! fail (another writer won a race, a disk error), a second entry with outcome `error` names the `ok`
//! entry's seq as void (see [`act`]).

mod aim;

use super::ApiState;
use super::gate::LoginGate;
use crate::access::export::{Exporter, export};
use crate::access::release::{self, NewRequest, Request};
use crate::access::roles::{self, Permission, Role};
use crate::access::service::UserError;
use crate::access::text::{CaseNumber, Note, Reason, for_audit};
use crate::access::users::{LoginDenied, User};
use crate::access::{Action, AuditSink, NewAuditEntry, Outcome};
use crate::clock::now_ms;
use crate::evidence::{ActError, Actor, Authority, EvidenceError, HoldAsk, ReleaseDecision, act_on};
use crate::store::{Decision, ImageKind, PlatePattern, ReadId, StoreError, StoredRead};
use crate::uplink::payload::ReadV1;
use aim::{roi_snippet, snapshot_stream};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// What the handlers share: the daemon's [`ApiState`] and the router's own guards.
pub(super) struct Shared {
    api: Arc<ApiState>,
    logins: LoginGate,
    /// Serialises check-then-act of the console's local hotlist (evidence changes have the evidence
    /// service's own lock), so a check cannot go stale before its act.
    changes: Mutex<()>,
}

impl std::ops::Deref for Shared {
    type Target = ApiState;
    fn deref(&self) -> &ApiState {
        &self.api
    }
}

impl Shared {
    fn change_lock(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changes.lock().unwrap_or_else(|e| e.into_inner())
    }
}

type St = State<Arc<Shared>>;

// Handlers that take no body still read it (`_body: Bytes`): a request body left unread makes the server
// close the kept-alive connection, which a client may already be reusing.

/// An error answer: status and a message the console shows.
pub struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

fn err(status: StatusCode, msg: impl Into<String>) -> ApiError {
    ApiError(status, msg.into())
}

type Res<T> = Result<T, ApiError>;

/// Whether a route's successful answer is audited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audit {
    /// Every answer 200 leaves at least one audit entry.
    Always,
    /// No entry, for the reason given: public pages and files, or the caller's own account.
    Exempt(&'static str),
}

/// One route of the API, as [`ROUTES`] lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// `get` or `post`.
    pub method: &'static str,
    pub path: &'static str,
    pub audit: Audit,
}

/// Declares every route once: [`ROUTES`] (what the audit test walks) and the router are built from the
/// same list, so no route is served without being listed with its audit rule.
macro_rules! routes {
    ($( $method:ident $path:literal => $handler:ident, $audit:expr; )*) => {
        /// Every route the API serves, with its audit rule.
        pub const ROUTES: &[Route] = &[ $( Route { method: stringify!($method), path: $path, audit: $audit } ),* ];

        fn add_routes(r: Router<Arc<Shared>>) -> Router<Arc<Shared>> {
            r $( .route($path, axum::routing::$method($handler)) )*
        }
    };
}

routes! {
    get "/" => console, Audit::Exempt("the console page, no data");
    get "/console.js" => console_js, Audit::Exempt("the console's script, no data");
    get "/console.css" => console_css, Audit::Exempt("the console's style sheet, no data");
    get "/policy" => policy_html, Audit::Exempt("the public policy");
    get "/policy.md" => policy_md, Audit::Exempt("the public policy");
    post "/api/login" => login, Audit::Always;
    post "/api/password" => change_password, Audit::Always;
    post "/api/logout" => logout, Audit::Always;
    get "/api/me" => me, Audit::Exempt("the caller's own account, which the login already recorded");
    post "/api/search" => search, Audit::Always;
    post "/api/reads/{id}" => read_detail, Audit::Always;
    post "/api/reads/{id}/crop" => read_crop, Audit::Always;
    get "/api/holds" => list_holds, Audit::Always;
    post "/api/holds" => place_hold, Audit::Always;
    post "/api/holds/release" => release_hold, Audit::Always;
    get "/api/alerts" => list_alerts, Audit::Always;
    get "/api/alerts/stream" => alert_stream, Audit::Always;
    get "/api/alerts/{id}/crop" => alert_crop, Audit::Always;
    post "/api/alerts/{id}/decision" => alert_decision, Audit::Always;
    get "/api/cameras" => list_cameras, Audit::Always;
    get "/api/cameras/stream" => camera_stream, Audit::Always;
    get "/api/cameras/{id}/snapshot" => snapshot_stream, Audit::Always;
    post "/api/cameras/{id}/roi" => roi_snippet, Audit::Always;
    get "/api/hotlists" => list_hotlists, Audit::Always;
    post "/api/hotlists/search" => search_hotlists, Audit::Always;
    post "/api/hotlists/local" => add_local_entry, Audit::Always;
    post "/api/hotlists/local/remove" => remove_local_entry, Audit::Always;
    get "/api/releases" => list_releases, Audit::Always;
    post "/api/releases" => request_release, Audit::Always;
    post "/api/releases/{id}/decision" => decide_release, Audit::Always;
    post "/api/releases/{id}/export" => export_release, Audit::Always;
    get "/api/releases/{id}/bundle" => release_bundle, Audit::Always;
    get "/api/audit" => audit_view, Audit::Always;
    post "/api/audit/verify" => audit_verify, Audit::Always;
    get "/api/audit/report" => audit_report, Audit::Always;
    get "/api/users" => list_users, Audit::Always;
    post "/api/users" => add_user, Audit::Always;
    post "/api/users/{name}/training" => user_training, Audit::Always;
    post "/api/users/{name}/lock" => user_lock, Audit::Always;
    post "/api/users/{name}/unlock" => user_unlock, Audit::Always;
    post "/api/users/{name}/password" => user_password, Audit::Always;
    post "/api/users/{name}/approve" => user_approve, Audit::Always;
}

pub fn router(state: Arc<ApiState>) -> Router {
    let shared = Arc::new(Shared { api: state, logins: LoginGate::new(), changes: Mutex::new(()) });
    super::headers::secure(add_routes(Router::new())).with_state(shared)
}

async fn console() -> impl IntoResponse {
    Html(include_str!("console.html"))
}

async fn console_js() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], include_str!("console.js"))
}

async fn console_css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], include_str!("console.css"))
}

/// The role table as the policy states it.
pub fn role_lines() -> Vec<crate::config::policy::RoleLine> {
    roles::PERMISSIONS
        .iter()
        .map(|(r, ps)| crate::config::policy::RoleLine {
            role: r.as_str().to_string(),
            permissions: ps.iter().map(|p| p.as_str().replace('_', " ")).collect(),
        })
        .collect()
}

async fn policy_html(State(s): St) -> impl IntoResponse {
    Html(crate::config::policy::html(&s.config, &role_lines()))
}

async fn policy_md(State(s): St) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
        crate::config::policy::markdown(&s.config, &role_lines()),
    )
}

/// The signed-in user of a request, re-checked (lock, training) on every call: the extractor every
/// handler that needs a session takes, so none can forget it.
pub(super) struct Caller {
    user: User,
    /// The client's address, as the audit log records it.
    source: String,
    /// The session token, for streams that end with the session.
    token: String,
}

impl Caller {
    fn entry(&self, action: Action) -> NewAuditEntry {
        self.actor().entry(action)
    }

    /// The caller as the evidence service sees them: their roles are their authority.
    fn actor(&self) -> Actor {
        Actor {
            name: self.user.username.clone(),
            organisation: self.user.organisation.clone(),
            source: self.source.clone(),
            authority: Authority::Roles(self.user.roles.clone()),
        }
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
}

impl axum::extract::FromRequestParts<Arc<Shared>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, s: &Arc<Shared>) -> Res<Self> {
        let addr = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0)
            .ok_or_else(|| err(StatusCode::INTERNAL_SERVER_ERROR, "the server gives no client address"))?;
        let token = bearer(&parts.headers).ok_or_else(|| err(StatusCode::UNAUTHORIZED, "log in first"))?;
        let (user, _) = off_worker(|| s.users.session_user(token, now_ms())).map_err(|e| match e {
            UserError::Audit(_) | UserError::Store(_) => err(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            other => err(StatusCode::UNAUTHORIZED, other.to_string()),
        })?;
        Ok(Caller { user, source: addr.to_string(), token: token.to_string() })
    }
}

fn user_error(e: UserError) -> ApiError {
    match e {
        UserError::Audit(_) | UserError::Store(_) => err(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        UserError::NotFound(_) => err(StatusCode::NOT_FOUND, e.to_string()),
        UserError::Denied(_) | UserError::Session(_) => err(StatusCode::UNAUTHORIZED, e.to_string()),
        UserError::LastAdmin(_) | UserError::Approve(_) => err(StatusCode::CONFLICT, e.to_string()),
        _ => err(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

/// The HTTP answer to an evidence service refusal.
fn evidence_error(e: EvidenceError) -> ApiError {
    let status = match &e {
        EvidenceError::Forbidden(_) => StatusCode::FORBIDDEN,
        EvidenceError::Invalid(_) => StatusCode::BAD_REQUEST,
        EvidenceError::NotFound(_) => StatusCode::NOT_FOUND,
        EvidenceError::Conflict(_) => StatusCode::CONFLICT,
        EvidenceError::Audit(a) => {
            log::error!("audit write failed, access refused: {a}");
            StatusCode::SERVICE_UNAVAILABLE
        }
        EvidenceError::Store(_) | EvidenceError::NotDone(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    ApiError(status, e.to_string())
}

/// Runs `f`, which writes and syncs the audit log or the store, without holding up this async worker:
/// on the daemon's multi-thread runtime the worker's other tasks move to another thread meanwhile
/// (`block_in_place`), so the ~100 audited call sites stay plain code borrowing the request's state.
fn off_worker<T>(f: impl FnOnce() -> T) -> T {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

/// Refuses (and audits the refusal) unless the caller's roles allow `p`.
fn require(s: &ApiState, c: &Caller, p: Permission, action: Action, object: &str) -> Res<()> {
    require_any(s, c, &[p], action, object)
}

/// Refuses (and audits the refusal) unless the caller's roles allow one of `ps`: the evidence service's
/// check, so both doors refuse alike.
fn require_any(s: &ApiState, c: &Caller, ps: &[Permission], action: Action, object: &str) -> Res<()> {
    off_worker(|| s.evidence.require(&c.actor(), ps, action, object)).map_err(evidence_error)
}

/// Writes an audit entry; if that fails, the access it records does not happen.
fn audit(s: &ApiState, e: NewAuditEntry) -> Res<u64> {
    record(s.audit.as_ref(), e)
}

fn record(sink: &dyn AuditSink, e: NewAuditEntry) -> Res<u64> {
    off_worker(|| sink.record(e)).map_err(|e| {
        log::error!("audit write failed, access refused: {e}");
        err(StatusCode::SERVICE_UNAVAILABLE, "the audit log cannot record this access, so it is refused")
    })
}

/// Audits a refusal (`outcome`: denied by a rule, error for what does not exist) and returns it.
fn refuse<T>(s: &ApiState, base: NewAuditEntry, outcome: Outcome, status: StatusCode, why: String) -> Res<T> {
    audit(s, NewAuditEntry { outcome: Some(outcome), detail: why.clone(), ..base })?;
    Err(err(status, why))
}

/// A checked change outside the evidence service (the console's local hotlist), in its order: `entry` recorded as
/// ok, then the change; a store failure voids the entry ([`crate::evidence::act_on`]).
fn act<T, E: std::fmt::Display>(s: &ApiState, entry: NewAuditEntry, change: impl FnOnce() -> Result<T, E>) -> Res<T> {
    off_worker(|| act_on(s.audit.as_ref(), entry, change)).map_err(|e| match e {
        ActError::Audit(a) => evidence_error(EvidenceError::Audit(a)),
        ActError::NotDone(e) => err(StatusCode::INTERNAL_SERVER_ERROR, format!("not done: {e}")),
    })
}

fn user_json(s: &ApiState, u: &User) -> Value {
    let perms: Vec<&str> = Permission::ALL.iter().filter(|p| roles::may(&u.roles, **p)).map(|p| p.as_str()).collect();
    json!({
        "username": u.username,
        "display_name": u.display_name,
        "organisation": u.organisation,
        "roles": u.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        "permissions": perms,
        "purposes": s.config.api.search_purposes,
    })
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

/// What a failed login is told, whatever the reason: a wrong password, an unknown, locked, disabled or
/// untrained account all read alike, so the answer confirms nothing; the audit entry has the reason.
const LOGIN_FAILED: &str =
    "wrong username or password, or the account may not log in; ask an administrator if this persists";

fn login_error(e: UserError) -> ApiError {
    match e {
        UserError::Audit(_) | UserError::Store(_) => err(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        UserError::Denied(LoginDenied::MustChangePassword) => {
            ApiError(StatusCode::FORBIDDEN, LoginDenied::MustChangePassword.to_string())
        }
        UserError::Password(p) => err(StatusCode::BAD_REQUEST, p.to_string()),
        UserError::Denied(_) | UserError::NotFound(_) | UserError::Invalid(_) | UserError::Session(_) => {
            err(StatusCode::UNAUTHORIZED, LOGIN_FAILED)
        }
        other => err(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

/// Runs a password check (login or change) through the gate: rate limit per source address before any
/// hashing, then a bounded number at once (see [`LoginGate`]).
async fn verify_gated<T: Send + 'static>(
    s: &Arc<Shared>,
    addr: SocketAddr,
    f: impl FnOnce(&ApiState) -> Result<T, UserError> + Send + 'static,
) -> Result<T, Response> {
    let permit = s.logins.admit(addr.ip()).map_err(|r| r.into_response())?;
    let st = s.clone();
    tokio::task::spawn_blocking(move || {
        // The permit lives in the blocking task: a client that hangs up does not free it early.
        let out = f(st.api.as_ref());
        st.logins.done(permit);
        out
    })
    .await
    .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response())?
    .map_err(|e| {
        let must_change = matches!(e, UserError::Denied(LoginDenied::MustChangePassword));
        let ApiError(status, msg) = login_error(e);
        (status, Json(json!({ "error": msg, "must_change_password": must_change }))).into_response()
    })
}

async fn login(
    State(s): St,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Json(b): Json<LoginBody>,
) -> Result<Json<Value>, Response> {
    let (user, session) =
        verify_gated(&s, addr, move |a| a.users.login(&b.username, &b.password, &addr.to_string(), now_ms())).await?;
    Ok(Json(json!({ "token": session.token, "user": user_json(&s, &user) })))
}

#[derive(Deserialize)]
struct ChangePasswordBody {
    username: String,
    /// The current password (the temporary one an administrator set).
    password: String,
    new_password: String,
}

/// A user replaces their password (required after an administrator set it) and is logged in.
async fn change_password(
    State(s): St,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Json(b): Json<ChangePasswordBody>,
) -> Result<Json<Value>, Response> {
    let (user, session) = verify_gated(&s, addr, move |a| {
        a.users.change_own_password(&b.username, &b.password, &b.new_password, &addr.to_string(), now_ms())
    })
    .await?;
    Ok(Json(json!({ "token": session.token, "user": user_json(&s, &user) })))
}

async fn logout(
    State(s): St,
    headers: HeaderMap,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    _body: Bytes,
) -> Res<Json<Value>> {
    let token = bearer(&headers).unwrap_or("");
    off_worker(|| s.users.logout(token, &addr.to_string())).map_err(user_error)?;
    Ok(Json(json!({ "ok": true })))
}

async fn me(State(s): St, c: Caller) -> Res<Json<Value>> {
    Ok(Json(user_json(&s, &c.user)))
}

/// Why a search or view happens: policy requires both.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Why {
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    case_number: String,
}

/// The purpose and case number, checked; a refusal is audited with the values cut down to size.
fn check_why(s: &ApiState, why: &Why, base: NewAuditEntry) -> Res<CaseNumber> {
    let problem = if !s.config.api.search_purposes.iter().any(|p| p == &why.purpose) {
        format!("a purpose from the configured list is required ({})", s.config.api.search_purposes.join(", "))
    } else {
        match CaseNumber::parse(&why.case_number) {
            Ok(c) => return Ok(c),
            Err(_) if why.case_number.trim().is_empty() => "a case or incident number is required".to_string(),
            Err(e) => e.to_string(),
        }
    };
    refuse(
        s,
        NewAuditEntry { purpose: for_audit(&why.purpose), case_number: for_audit(&why.case_number), ..base },
        Outcome::Denied,
        StatusCode::BAD_REQUEST,
        problem,
    )
}

/// A search: in a POST body, so plate and case number stay out of URLs and the logs that keep them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchBody {
    plate: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    case_number: String,
    from: Option<jiff::Timestamp>,
    to: Option<jiff::Timestamp>,
    camera: Option<String>,
    #[serde(default)]
    page: u64,
    per_page: Option<u64>,
}

async fn search(State(s): St, c: Caller, Json(q): Json<SearchBody>) -> Res<Json<Value>> {
    require(&s, &c, Permission::Search, Action::Search, "")?;
    let base = NewAuditEntry { query: for_audit(&q.plate), ..c.entry(Action::Search) };
    let case = check_why(&s, &Why { purpose: q.purpose.clone(), case_number: q.case_number.clone() }, base.clone())?;
    let base = NewAuditEntry { purpose: q.purpose.clone(), case_number: case.into_string(), ..base };
    let pattern = match PlatePattern::parse(&q.plate) {
        Ok(p) => p,
        Err(e) => return refuse(&s, base, Outcome::Denied, StatusCode::BAD_REQUEST, e.to_string()),
    };
    let per_page = q.per_page.unwrap_or(50).clamp(1, 500);
    // A page past what usize can address is refused, never wrapped round to page 0.
    let Some(skip) = q.page.checked_mul(per_page).and_then(|n| usize::try_from(n).ok()) else {
        return refuse(&s, base, Outcome::Denied, StatusCode::BAD_REQUEST, format!("page {} is out of range", q.page));
    };
    let st = s.clone();
    let found = tokio::task::spawn_blocking(move || st.store.search(&pattern, 100_000))
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let from = q.from.map(|t| t.as_millisecond()).unwrap_or(i64::MIN);
    let to = q.to.map(|t| t.as_millisecond()).unwrap_or(i64::MAX);
    let reads: Vec<StoredRead> = found
        .into_iter()
        .filter(|r| {
            r.captured_at_ms >= from
                && r.captured_at_ms <= to
                && q.camera.as_ref().is_none_or(|cam| &r.camera_id == cam)
        })
        .collect();
    let page: Vec<ReadV1> = reads.iter().skip(skip).take(per_page as usize).map(ReadV1::from).collect();
    audit(&s, NewAuditEntry { outcome: Some(Outcome::Ok), result_count: Some(reads.len() as u64), ..base })?;
    Ok(Json(json!({ "total": reads.len(), "page": q.page, "per_page": per_page, "reads": page })))
}

fn parse_id(id: &str) -> Option<ReadId> {
    id.parse::<uuid::Uuid>().ok().map(ReadId)
}

async fn read_detail(State(s): St, c: Caller, Path(id): Path<String>, Json(why): Json<Why>) -> Res<Json<Value>> {
    require(&s, &c, Permission::ViewRead, Action::ViewRead, &id)?;
    let base = NewAuditEntry { object: for_audit(&id), ..c.entry(Action::ViewRead) };
    let case = check_why(&s, &why, base.clone())?;
    let base = NewAuditEntry { purpose: why.purpose, case_number: case.into_string(), ..base };
    let Some(rid) = parse_id(&id) else {
        return refuse(&s, base, Outcome::Error, StatusCode::BAD_REQUEST, "not a read id".into());
    };
    let read = s.store.get_read(rid).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let Some(read) = read else {
        return refuse(
            &s,
            NewAuditEntry { result_count: Some(0), ..base },
            Outcome::Error,
            StatusCode::NOT_FOUND,
            "no such read".into(),
        );
    };
    let holds = s.store.holds_for(rid).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    audit(&s, NewAuditEntry { outcome: Some(Outcome::Ok), result_count: Some(1), ..base })?;
    let mut v = serde_json::to_value(ReadV1::from(&read)).unwrap_or_default();
    v["has_crop"] = json!(read.has_crop);
    v["holds"] = serde_json::to_value(holds).unwrap_or_default();
    Ok(Json(v))
}

async fn read_crop(State(s): St, c: Caller, Path(id): Path<String>, Json(why): Json<Why>) -> Res<Response> {
    require(&s, &c, Permission::ViewImage, Action::ViewImage, &id)?;
    let base = NewAuditEntry { object: for_audit(&id), ..c.entry(Action::ViewImage) };
    let case = check_why(&s, &why, base.clone())?;
    let base = NewAuditEntry { purpose: why.purpose, case_number: case.into_string(), ..base };
    let Some(rid) = parse_id(&id) else {
        return refuse(&s, base, Outcome::Error, StatusCode::BAD_REQUEST, "not a read id".into());
    };
    let img = s.store.image(rid, ImageKind::Crop).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let Some(img) = img else {
        return refuse(
            &s,
            NewAuditEntry { result_count: Some(0), ..base },
            Outcome::Error,
            StatusCode::NOT_FOUND,
            "no crop for this read".into(),
        );
    };
    audit(&s, NewAuditEntry { outcome: Some(Outcome::Ok), result_count: Some(1), ..base })?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg")], img).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldBody {
    read_id: String,
    case_number: CaseNumber,
    reason: Reason,
    expires_at: Option<jiff::Timestamp>,
}

async fn place_hold(State(s): St, c: Caller, Json(b): Json<HoldBody>) -> Res<Json<Value>> {
    let ask = HoldAsk {
        read_id: b.read_id,
        case_number: b.case_number,
        reason: b.reason,
        expires_at_ms: b.expires_at.map(|t| t.as_millisecond()),
    };
    let h = off_worker(|| s.evidence.place_hold(&c.actor(), ask, now_ms())).map_err(evidence_error)?;
    Ok(Json(json!({ "hold_id": h.id, "read_id": h.read_id })))
}

/// Used and total bytes of the file system holding `path` (statvfs).
fn disk_use(path: &std::path::Path) -> Option<(u64, u64)> {
    use std::os::unix::ffi::OsStrExt;
    let dir = if path.exists() { path } else { path.parent()? };
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs fills the struct we pass; the path is a valid NUL-terminated string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return None;
    }
    let frag = st.f_frsize as u64;
    let total = st.f_blocks as u64 * frag;
    let free = st.f_bfree as u64 * frag;
    Some((total.saturating_sub(free), total))
}

/// Retention and holds: every hold (in force, expired, released) with its case and expiry, the last and
/// next retention sweep, the oldest read against the retention period, and disk use against the
/// watermarks.
async fn list_holds(State(s): St, c: Caller) -> Res<Json<Value>> {
    require_any(&s, &c, &[Permission::PlaceHold, Permission::ReleaseHold], Action::HoldsViewed, "holds")?;
    let st = s.clone();
    let v = tokio::task::spawn_blocking(move || -> Result<Value, String> {
        let now = now_ms();
        let holds = st.store.all_holds().map_err(|e| e.to_string())?;
        let in_force = holds.iter().filter(|h| crate::retention::hold_binds(h, now)).count();
        let mut by_case: std::collections::BTreeMap<String, usize> = std::collections::BTreeMap::new();
        for h in holds.iter().filter(|h| crate::retention::hold_binds(h, now)) {
            *by_case.entry(h.case_number.clone()).or_default() += 1;
        }
        let list: Vec<Value> = holds
            .iter()
            .map(|h| {
                let mut v = serde_json::to_value(h).unwrap_or_default();
                v["read_id"] = json!(h.read_id.to_string());
                v["in_force"] = json!(crate::retention::hold_binds(h, now));
                v
            })
            .collect();
        let ret = &st.config.store.retention;
        let last = st.audit_log.latest(1, None, Some("retention_purge")).map_err(|e| e.to_string())?.into_iter().next();
        let next_ms = last.as_ref().map(|e| e.at_ms + ret.sweep_interval_s as i64 * 1000);
        let disk = disk_use(st.store.path()).map(|(used, total)| {
            json!({"used_bytes": used, "total_bytes": total, "used_pct": if total > 0 { (used as f64 * 1000.0 / total as f64).round() / 10.0 } else { 0.0 },
                   "high_watermark_pct": st.config.store.disk_high_watermark_pct, "full_watermark_pct": st.config.store.disk_full_watermark_pct})
        });
        Ok(json!({
            "holds": list,
            "in_force": in_force,
            "by_case": by_case,
            "retention": {
                "min_days": ret.min_days, "max_days": ret.max_days, "sweep_interval_s": ret.sweep_interval_s,
                "last_sweep": last.as_ref().map(|e| json!({"at_ms": e.at_ms, "outcome": e.outcome, "detail": e.detail})),
                "next_sweep_ms": next_ms,
                "oldest_read_ms": st.store.oldest_read_ms().map_err(|e| e.to_string())?,
                "reads": st.store.count_reads(),
                "store_bytes": st.store.size_on_disk().map_err(|e| e.to_string())?,
            },
            "disk": disk,
        }))
    })
    .await
    .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    let n = v["holds"].as_array().map_or(0, |a| a.len());
    audit(
        &s,
        NewAuditEntry {
            object: "holds".into(),
            outcome: Some(Outcome::Ok),
            result_count: Some(n as u64),
            ..c.entry(Action::HoldsViewed)
        },
    )?;
    Ok(Json(v))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseHoldBody {
    read_id: String,
    hold_id: uuid::Uuid,
    reason: Reason,
}

async fn release_hold(State(s): St, c: Caller, Json(b): Json<ReleaseHoldBody>) -> Res<Json<Value>> {
    let h = off_worker(|| s.evidence.release_hold(&c.actor(), &b.read_id, b.hold_id, b.reason, now_ms()))
        .map_err(evidence_error)?;
    Ok(Json(json!({ "hold_id": h.id, "released": true })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertDecisionBody {
    decision: Decision,
    #[serde(default)]
    note: Note,
}

async fn alert_decision(
    State(s): St,
    c: Caller,
    Path(id): Path<uuid::Uuid>,
    Json(b): Json<AlertDecisionBody>,
) -> Res<Json<Value>> {
    let rec =
        off_worker(|| s.evidence.decide_alert(&c.actor(), id, b.decision, b.note, now_ms())).map_err(evidence_error)?;
    Ok(Json(json!({ "alert": rec.id, "decision": b.decision })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertsQuery {
    /// Only alerts not yet confirmed or rejected.
    #[serde(default)]
    pending: bool,
    limit: Option<usize>,
}

/// The alert queue, newest first: each hit with the read's text, camera and time, the list entry it
/// matched, the match kind and score, and its verification if decided.
async fn list_alerts(State(s): St, c: Caller, Query(q): Query<AlertsQuery>) -> Res<Json<Value>> {
    require(&s, &c, Permission::VerifyAlert, Action::AlertsViewed, "alert queue")?;
    let limit = q.limit.unwrap_or(200).clamp(1, 1000);
    let st = s.clone();
    let found = tokio::task::spawn_blocking(move || -> Result<Vec<Value>, StoreError> {
        let mut out = Vec::new();
        // Decided alerts are skipped for `pending`: read a bounded window more than asked.
        for a in st.store.alerts(if q.pending { limit * 10 } else { limit })? {
            if q.pending && a.verification.is_some() {
                continue;
            }
            let read = st.store.get_read(a.read_id)?;
            out.push(json!({
                "id": a.id,
                "raised_at": jiff::Timestamp::from_millisecond(a.raised_at_ms).map(|t| t.to_string()).unwrap_or_default(),
                "read_id": a.read_id.to_string(),
                "plate": read.as_ref().map(|r| r.plate.expose().to_string()),
                "camera": read.as_ref().map(|r| r.camera_id.clone()),
                "captured_at": read.as_ref().and_then(|r| jiff::Timestamp::from_millisecond(r.captured_at_ms).ok()).map(|t| t.to_string()),
                "has_crop": read.as_ref().is_some_and(|r| r.has_crop),
                "hit": a.detail,
                "verification": a.verification,
            }));
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    })
    .await
    .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let detail = if q.pending { "pending alerts" } else { "all alerts" };
    audit(
        &s,
        NewAuditEntry {
            object: "alert queue".into(),
            outcome: Some(Outcome::Ok),
            result_count: Some(found.len() as u64),
            detail: detail.into(),
            ..c.entry(Action::AlertsViewed)
        },
    )?;
    Ok(Json(json!({ "alerts": found })))
}

/// The plate crop of an alert's read, for the officer to compare with the hit.
async fn alert_crop(State(s): St, c: Caller, Path(id): Path<uuid::Uuid>) -> Res<Response> {
    require(&s, &c, Permission::VerifyAlert, Action::AlertsViewed, &id.to_string())?;
    let base = NewAuditEntry { object: id.to_string(), detail: "crop".into(), ..c.entry(Action::AlertsViewed) };
    let Some(a) = s.store.alert(id).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))? else {
        return refuse(&s, base, Outcome::Error, StatusCode::NOT_FOUND, "no such alert".into());
    };
    let Some(img) =
        s.store.image(a.read_id, ImageKind::Crop).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    else {
        return refuse(
            &s,
            NewAuditEntry { result_count: Some(0), ..base },
            Outcome::Error,
            StatusCode::NOT_FOUND,
            "no crop for this alert's read".into(),
        );
    };
    audit(&s, NewAuditEntry { outcome: Some(Outcome::Ok), result_count: Some(1), ..base })?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg")], img).into_response())
}

/// How long one live stream lasts before the console reconnects (and is re-checked and re-audited).
const STREAM_MAX: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// The live alert queue as server-sent events: `event: alert` with the alert's id (nothing else: the
/// console then reads the queue, audited) whenever an alert is raised or decided. No polling: the store's
/// own change feed wakes it. It ends when the session does (checked every 15 s without extending it), and
/// after [`STREAM_MAX`].
async fn alert_stream(State(s): St, c: Caller) -> Res<Response> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    require(&s, &c, Permission::VerifyAlert, Action::AlertsViewed, "alert stream")?;
    let token = c.token.clone();
    audit(
        &s,
        NewAuditEntry {
            object: "alert stream".into(),
            outcome: Some(Outcome::Ok),
            detail: "live queue opened (events carry alert ids only)".into(),
            ..c.entry(Action::AlertsViewed)
        },
    )?;
    let sub = s.store.watch_alerts();
    let until = tokio::time::Instant::now() + STREAM_MAX;
    let st = s.clone();
    let hello = futures_util::stream::once(async {
        Ok::<Event, std::convert::Infallible>(Event::default().event("ready").data("listening"))
    });
    let events = futures_util::stream::unfold((sub, st, token), move |(mut sub, st, token)| async move {
        loop {
            if tokio::time::Instant::now() >= until {
                return None;
            }
            match tokio::time::timeout(std::time::Duration::from_secs(15), sub.next()).await {
                Ok(Some(key)) => {
                    let id = <[u8; 16]>::try_from(key.as_slice())
                        .map(|b| uuid::Uuid::from_bytes(b).to_string())
                        .unwrap_or_default();
                    return Some((Ok(Event::default().event("alert").data(id)), (sub, st, token)));
                }
                Ok(None) => return None,
                Err(_) if !st.users.sessions().alive(&token, now_ms()) => return None,
                Err(_) => {}
            }
        }
    });
    Ok(Sse::new(futures_util::StreamExt::chain(hello, events)).keep_alive(KeepAlive::default()).into_response())
}

fn camera_samples(s: &ApiState) -> Vec<super::cameras::Sample> {
    let Some(set) = s.cameras.as_ref() else { return Vec::new() };
    set.states().iter().filter_map(|(id, _)| set.with(id, super::cameras::sample)).collect()
}

/// The cameras' state once (the Cameras page streams it: [`camera_stream`]).
async fn list_cameras(State(s): St, c: Caller) -> Res<Json<Value>> {
    require(&s, &c, Permission::ViewCameras, Action::CamerasViewed, "cameras")?;
    let views: Vec<_> = camera_samples(&s).into_iter().map(|x| super::cameras::view(x, None)).collect();
    audit(
        &s,
        NewAuditEntry {
            object: "cameras".into(),
            outcome: Some(Outcome::Ok),
            result_count: Some(views.len() as u64),
            ..c.entry(Action::CamerasViewed)
        },
    )?;
    Ok(Json(json!({ "cameras": views })))
}

/// The cameras' state, rates and verdict every 2 s as server-sent events (`event: cameras`), recorded once
/// when opened; it ends with the session (checked without extending it) and after [`STREAM_MAX`].
async fn camera_stream(State(s): St, c: Caller) -> Res<Response> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    require(&s, &c, Permission::ViewCameras, Action::CamerasViewed, "camera stream")?;
    let token = c.token.clone();
    audit(
        &s,
        NewAuditEntry {
            object: "camera stream".into(),
            outcome: Some(Outcome::Ok),
            detail: "Cameras page opened (live state)".into(),
            ..c.entry(Action::CamerasViewed)
        },
    )?;
    let until = tokio::time::Instant::now() + STREAM_MAX;
    type Prev = std::collections::HashMap<String, (super::cameras::Sample, Option<super::cameras::Rates>)>;
    let start: (Arc<Shared>, String, Prev, std::time::Instant, bool) =
        (s.clone(), token, Prev::new(), std::time::Instant::now(), true);
    let events = futures_util::stream::unfold(start, move |(st, token, mut prev, mut at, first)| async move {
        if !first {
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        }
        if tokio::time::Instant::now() >= until || !st.users.sessions().alive(&token, now_ms()) {
            return None;
        }
        let secs = at.elapsed().as_secs_f64();
        at = std::time::Instant::now();
        let views: Vec<super::cameras::View> = camera_samples(&st)
            .into_iter()
            .map(|now| {
                let rates = prev.get(&now.id).map(|(before, last)| super::cameras::rates(before, &now, secs, *last));
                prev.insert(now.id.clone(), (now.clone(), rates));
                super::cameras::view(now, rates)
            })
            .collect();
        let data = serde_json::to_string(&views).unwrap_or_else(|_| "[]".into());
        Some((
            Ok::<Event, std::convert::Infallible>(Event::default().event("cameras").data(data)),
            (st, token, prev, at, false),
        ))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()).into_response())
}

fn hotlists_of(s: &ApiState) -> Res<&crate::pipeline::hotlists::Hotlists> {
    s.hotlists
        .as_deref()
        .ok_or_else(|| err(StatusCode::SERVICE_UNAVAILABLE, "the hotlists are not loaded in this process"))
}

/// The lists in force: name, origin (a file on the box, or pushed by the central server), when loaded
/// (its version), entries and entries still active. Read-only: files are kept in TOML-managed paths,
/// pushes come from the central server.
async fn list_hotlists(State(s): St, c: Caller) -> Res<Json<Value>> {
    require_any(&s, &c, &[Permission::VerifyAlert, Permission::ManageHotlists], Action::HotlistsViewed, "hotlists")?;
    let m = hotlists_of(&s)?.matcher();
    let now = now_ms();
    let lists: Vec<Value> = m
        .lists()
        .iter()
        .map(|l| {
            let origin = if l.name.starts_with("mqtt:") {
                "central server (read-only)"
            } else if l.name == crate::pipeline::hotlists::LOCAL {
                "added in the console"
            } else {
                "file on the box"
            };
            json!({"name": l.name, "origin": origin, "loaded_at_ms": l.loaded_at_ms,
                   "entries": l.entries.len(), "active": l.entries.iter().filter(|e| e.is_active(now)).count()})
        })
        .collect();
    audit(
        &s,
        NewAuditEntry {
            object: "hotlists".into(),
            outcome: Some(Outcome::Ok),
            result_count: Some(lists.len() as u64),
            ..c.entry(Action::HotlistsViewed)
        },
    )?;
    Ok(Json(json!({ "lists": lists })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HotlistSearchBody {
    /// Part of an entry's plate or pattern (case ignored); in a body, so it stays out of URLs.
    query: String,
}

/// Entries of the lists in force whose plate or pattern contains the query (at most 200).
async fn search_hotlists(State(s): St, c: Caller, Json(b): Json<HotlistSearchBody>) -> Res<Json<Value>> {
    require_any(
        &s,
        &c,
        &[Permission::VerifyAlert, Permission::ManageHotlists],
        Action::HotlistsViewed,
        "hotlist entries",
    )?;
    let base = NewAuditEntry {
        object: "hotlist entries".into(),
        query: for_audit(&b.query),
        ..c.entry(Action::HotlistsViewed)
    };
    let q = b.query.trim().to_uppercase();
    if q.is_empty() || q.chars().count() > 16 || q.chars().any(char::is_control) {
        return refuse(
            &s,
            base,
            Outcome::Denied,
            StatusCode::BAD_REQUEST,
            "search for 1 to 16 characters of a plate".into(),
        );
    }
    let m = hotlists_of(&s)?.matcher();
    let now = now_ms();
    let mut found = Vec::new();
    'lists: for l in m.lists() {
        for e in &l.entries {
            if e.pattern.expose().to_uppercase().contains(&q) {
                found.push(json!({"list": l.name, "entry": e.pattern.expose(), "region": e.region, "category": e.category, "priority": e.priority,
                                  "source": e.source, "expires_at_ms": e.expires_at_ms, "active": e.is_active(now), "notes": e.notes, "line": e.line}));
                if found.len() >= 200 {
                    break 'lists;
                }
            }
        }
    }
    audit(&s, NewAuditEntry { outcome: Some(Outcome::Ok), result_count: Some(found.len() as u64), ..base })?;
    Ok(Json(json!({ "entries": found })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LocalEntryBody {
    plate: String,
    #[serde(default)]
    region: String,
    category: String,
    priority: u8,
    #[serde(default)]
    expiry: String,
    #[serde(default)]
    notes: Note,
    reason: Reason,
}

/// Adds (or replaces) an entry of the console's local list, with a reason; audited as hotlist_changed.
async fn add_local_entry(State(s): St, c: Caller, Json(b): Json<LocalEntryBody>) -> Res<Json<Value>> {
    require(&s, &c, Permission::ManageHotlists, Action::HotlistChanged, crate::pipeline::hotlists::LOCAL)?;
    let h = hotlists_of(&s)?;
    let base = NewAuditEntry {
        object: crate::pipeline::hotlists::LOCAL.into(),
        query: for_audit(&b.plate),
        ..c.entry(Action::HotlistChanged)
    };
    let e = crate::pipeline::hotlists::LocalEntry {
        plate: b.plate.clone(),
        region: b.region.clone(),
        category: b.category.clone(),
        priority: b.priority,
        expiry: b.expiry.clone(),
        notes: b.notes.to_string(),
        source: format!("console:{}", c.user.username),
    };
    let detail = format!("entry added ({}, priority {}); reason: {}", for_audit(&b.category), b.priority, b.reason);
    let retro = off_worker(|| {
        // Check and change under one lock, so a check cannot go stale before its change.
        let _g = s.change_lock();
        let current = h.local_text().map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        let csv = match crate::pipeline::hotlists::local_with(current.as_deref(), &e, now_ms()) {
            Ok(t) => t,
            Err(e) => return refuse(&s, base, Outcome::Denied, StatusCode::BAD_REQUEST, e.to_string()),
        };
        act(&s, NewAuditEntry { detail, ..base }, || h.put_local(&csv, &c.user.username))
    })?;
    Ok(Json(json!({ "added": b.plate.trim().to_uppercase(), "retroactive_alerts": retro })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoveLocalBody {
    plate: String,
    reason: Reason,
}

/// Removes the console's local entries for a plate, with a reason; audited as hotlist_changed.
async fn remove_local_entry(State(s): St, c: Caller, Json(b): Json<RemoveLocalBody>) -> Res<Json<Value>> {
    require(&s, &c, Permission::ManageHotlists, Action::HotlistChanged, crate::pipeline::hotlists::LOCAL)?;
    let h = hotlists_of(&s)?;
    let base = NewAuditEntry {
        object: crate::pipeline::hotlists::LOCAL.into(),
        query: for_audit(&b.plate),
        ..c.entry(Action::HotlistChanged)
    };
    let gone = off_worker(|| {
        let _g = s.change_lock();
        let current =
            h.local_text().map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?.unwrap_or_default();
        let (csv, gone) =
            match crate::pipeline::hotlists::local_without(&current, &b.plate) {
                Ok(x) if x.1 > 0 => x,
                Ok(_) => return refuse(
                    &s,
                    base,
                    Outcome::Error,
                    StatusCode::NOT_FOUND,
                    "no such entry in the console's local list (files and central lists are changed at their source)"
                        .into(),
                ),
                Err(e) => return refuse(&s, base, Outcome::Error, StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
            };
        let detail = format!("{gone} entry removed; reason: {}", b.reason);
        act(&s, NewAuditEntry { detail, ..base }, || h.put_local(&csv, &c.user.username))?;
        Ok(gone)
    })?;
    Ok(Json(json!({ "removed": gone })))
}

async fn list_releases(State(s): St, c: Caller) -> Res<Json<Value>> {
    require_any(&s, &c, &[Permission::RequestRelease, Permission::ApproveRelease], Action::ReleasesViewed, "")?;
    let all = s.store.releases().map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let whole = all.iter().filter(|r| r.request.scope.whole_store()).count();
    let detail = if whole > 0 { format!("{whole} covering the whole store") } else { String::new() };
    audit(
        &s,
        NewAuditEntry {
            outcome: Some(Outcome::Ok),
            result_count: Some(all.len() as u64),
            detail,
            ..c.entry(Action::ReleasesViewed)
        },
    )?;
    Ok(Json(json!({ "requests": all })))
}

async fn request_release(State(s): St, c: Caller, Json(b): Json<NewRequest>) -> Res<Json<Value>> {
    let id = off_worker(|| s.evidence.request_release(&c.actor(), b, now_ms())).map_err(evidence_error)?;
    Ok(Json(json!({ "id": id })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReleaseDecisionBody {
    approved: bool,
    #[serde(default)]
    note: Note,
    /// Required to approve a request whose scope is the whole store.
    #[serde(default)]
    confirm_whole_store: bool,
}

async fn decide_release(
    State(s): St,
    c: Caller,
    Path(id): Path<uuid::Uuid>,
    Json(b): Json<ReleaseDecisionBody>,
) -> Res<Json<Value>> {
    let d = ReleaseDecision { approved: b.approved, note: b.note, confirm_whole_store: b.confirm_whole_store };
    off_worker(|| s.evidence.decide_release(&c.actor(), id, d, now_ms())).map_err(evidence_error)?;
    Ok(Json(json!({ "id": id, "approved": b.approved })))
}

fn load_release(s: &ApiState, base: &NewAuditEntry, id: uuid::Uuid) -> Res<Request> {
    match s.store.release(id).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))? {
        Some(r) => Ok(r),
        None => refuse(s, base.clone(), Outcome::Error, StatusCode::NOT_FOUND, "no such release request".into()),
    }
}

async fn export_release(State(s): St, c: Caller, Path(id): Path<uuid::Uuid>, _body: Bytes) -> Res<Json<Value>> {
    require(&s, &c, Permission::Export, Action::Export, &id.to_string())?;
    let r = load_release(&s, &NewAuditEntry { object: id.to_string(), ..c.entry(Action::Export) }, id)?;
    let st = s.clone();
    let (user, org, source) = (c.user.username.clone(), c.user.organisation.clone(), c.source.clone());
    let req = r;
    let bundle = tokio::task::spawn_blocking(move || {
        let who = Exporter { user: &user, organisation: &org, source: &source };
        export(&st.store, &req, &st.device_key, &st.export_dir, &who, st.audit.as_ref(), now_ms())
    })
    .await
    .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| match e {
        crate::access::export::ExportError::Release(_) => err(StatusCode::FORBIDDEN, e.to_string()),
        crate::access::export::ExportError::Audit(_) => err(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        other => err(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    })?;
    off_worker(|| s.evidence.note_export(id, &bundle.dir.display().to_string())).map_err(evidence_error)?;
    Ok(Json(json!({ "dir": bundle.dir, "manifest": bundle.manifest })))
}

/// The latest signed bundle of an approved request, as one tar file. The download is data leaving the box:
/// it is recorded as an export (the compliance report checks it against the approved request like any).
async fn release_bundle(State(s): St, c: Caller, Path(id): Path<uuid::Uuid>) -> Res<Response> {
    require(&s, &c, Permission::Export, Action::Export, &id.to_string())?;
    let base = NewAuditEntry { object: id.to_string(), ..c.entry(Action::Export) };
    let r = load_release(&s, &base, id)?;
    let base = NewAuditEntry { case_number: r.request.case_number.clone(), purpose: r.request.purpose.clone(), ..base };
    if let Err(e) = release::may_export(&r) {
        return refuse(&s, base, Outcome::Denied, StatusCode::FORBIDDEN, e.to_string());
    }
    let dir = r.exports.last().map(std::path::PathBuf::from).filter(|d| d.starts_with(&s.export_dir) && d.is_dir());
    let Some(dir) = dir else {
        return refuse(
            &s,
            base,
            Outcome::Error,
            StatusCode::NOT_FOUND,
            "no bundle exported for this request yet: export it first".into(),
        );
    };
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "polewatch-export".into());
    let d2 = dir.clone();
    let tar = tokio::task::spawn_blocking(move || -> Result<(usize, Vec<u8>), String> {
        let files = super::tarball::read_dir_files(&d2).map_err(|e| format!("cannot read the bundle: {e}"))?;
        let mtime = jiff::Timestamp::now().as_second().max(0) as u64;
        Ok((files.len(), super::tarball::archive(&files, mtime).map_err(|e| e.to_string())?))
    })
    .await
    .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let (count, bytes) = match tar {
        Ok(t) => t,
        Err(e) => return refuse(&s, base, Outcome::Error, StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    audit(
        &s,
        NewAuditEntry {
            outcome: Some(Outcome::Ok),
            result_count: Some(count as u64),
            detail: format!("signed bundle {name} downloaded as one tar file"),
            ..base
        },
    )?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-tar".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.tar\"")),
        ],
        bytes,
    )
        .into_response())
}

#[derive(Deserialize)]
struct AuditQuery {
    user: Option<String>,
    action: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

async fn audit_view(State(s): St, c: Caller, Query(q): Query<AuditQuery>) -> Res<Json<Value>> {
    require(&s, &c, Permission::ViewAudit, Action::AuditViewed, "")?;
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let entries = s
        .audit_log
        .latest(limit, q.user.as_deref(), q.action.as_deref())
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let detail = format!("user={:?} action={:?}", q.user.as_deref().map(for_audit), q.action.as_deref().map(for_audit));
    audit(
        &s,
        NewAuditEntry {
            outcome: Some(Outcome::Ok),
            result_count: Some(entries.len() as u64),
            detail,
            ..c.entry(Action::AuditViewed)
        },
    )?;
    Ok(Json(json!({ "entries": entries })))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AuditVerifyBody {
    /// The text of a checkpoint file from `polewatch audit checkpoint` (kept off the box).
    #[serde(default)]
    checkpoint: Option<String>,
}

/// The same checks as the offline `polewatch audit verify`, on the running daemon's store: nothing stops.
/// The result (passed, or where the chain breaks) is itself recorded.
async fn audit_verify(State(s): St, c: Caller, body: Bytes) -> Res<Json<Value>> {
    require(&s, &c, Permission::ViewAudit, Action::AuditVerified, "audit log")?;
    let base = NewAuditEntry { object: "audit log".into(), ..c.entry(Action::AuditVerified) };
    let b: AuditVerifyBody = if body.is_empty() {
        AuditVerifyBody::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => {
                return refuse(&s, base, Outcome::Denied, StatusCode::BAD_REQUEST, format!("bad request body: {e}"));
            }
        }
    };
    let cp = match b.checkpoint.as_deref().map(crate::access::audit::Checkpoint::parse).transpose() {
        Ok(cp) => cp,
        Err(e) => return refuse(&s, base, Outcome::Denied, StatusCode::BAD_REQUEST, e.to_string()),
    };
    let st = s.clone();
    let result = tokio::task::spawn_blocking(move || st.audit_log.verify(cp))
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    match result {
        Ok(r) => {
            let message = crate::access::audit::verify_summary(&r);
            audit(
                &s,
                NewAuditEntry {
                    outcome: Some(Outcome::Ok),
                    result_count: Some(r.entries),
                    detail: message.replace('\n', "; "),
                    ..base
                },
            )?;
            Ok(Json(
                json!({ "ok": true, "entries": r.entries, "head": r.head, "checkpoint_seq": r.checkpoint_seq, "message": message }),
            ))
        }
        Err(crate::access::audit::VerifyError::Broken(b)) => {
            let message = b.to_string();
            audit(&s, NewAuditEntry { outcome: Some(Outcome::Error), detail: message.clone(), ..base })?;
            Ok(Json(json!({ "ok": false, "first_bad_seq": b.first_bad_seq, "message": message })))
        }
        Err(e) => refuse(&s, base, Outcome::Error, StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    /// `YYYY-MM-DD` (from the start of that day) or an RFC 3339 time.
    from: String,
    /// `YYYY-MM-DD` (through the end of that day) or an RFC 3339 time (exclusive).
    to: String,
    /// `json` (default) or `html`.
    #[serde(default)]
    format: Option<String>,
    burst_count: Option<usize>,
    burst_minutes: Option<u32>,
    day_start: Option<u8>,
    day_end: Option<u8>,
    /// IANA time zone the hours and times are read in; the box's own by default.
    tz: Option<String>,
}

/// A report bound: a day in `tz` (its start, or the next day's start for an end), or an instant.
fn report_bound(text: &str, tz: &jiff::tz::TimeZone, end: bool) -> Result<i64, String> {
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        let d = if end { d.tomorrow().map_err(|e| e.to_string())? } else { d };
        return d.to_zoned_datetime(tz.clone()).map(|z| z.timestamp().as_millisecond()).map_err(|e| e.to_string());
    }
    text.parse::<jiff::Timestamp>()
        .map(|t| t.as_millisecond())
        .map_err(|_| format!("`{}` is neither YYYY-MM-DD nor an RFC 3339 time", for_audit(text)))
}

fn report_rules(q: &ReportQuery) -> Result<crate::access::report::Rules, String> {
    let d = crate::access::report::Rules::default();
    let tz = match &q.tz {
        Some(name) => jiff::tz::TimeZone::get(name).map_err(|_| format!("unknown time zone `{}`", for_audit(name)))?,
        None => d.tz.clone(),
    };
    let (start, end) = (q.day_start.unwrap_or(d.day_start_hour), q.day_end.unwrap_or(d.day_end_hour));
    if start > 24 || end > 24 {
        return Err("day_start and day_end are hours, 0 to 24".into());
    }
    let burst_count = q.burst_count.unwrap_or(d.burst_count);
    let burst_minutes = q.burst_minutes.unwrap_or(d.burst_minutes);
    if burst_count < 2 || burst_minutes == 0 || burst_minutes > 24 * 60 {
        return Err("a burst needs burst_count ≥ 2 and burst_minutes 1 to 1440".into());
    }
    Ok(crate::access::report::Rules { burst_count, burst_minutes, day_start_hour: start, day_end_hour: end, tz })
}

/// Gathers the report's inputs from the store and the log, with the chain verified.
fn compliance(
    s: &ApiState,
    from_ms: i64,
    to_ms: i64,
    rules: &crate::access::report::Rules,
) -> Result<crate::access::report::Report, crate::access::report::ReportError> {
    let r = &s.config.store.retention;
    crate::access::report::gather(
        &s.store,
        &s.audit_log,
        r.max_days.max(r.min_days),
        r.sweep_interval_s,
        from_ms,
        to_ms,
        rules,
    )
}

/// The compliance report for a period, as JSON or a printable page. Produced while the daemon runs, and
/// recorded with its period and the number of flags.
async fn audit_report(State(s): St, c: Caller, Query(q): Query<ReportQuery>) -> Res<Response> {
    require(&s, &c, Permission::ViewAudit, Action::AuditReport, "compliance report")?;
    let base = NewAuditEntry { object: "compliance report".into(), ..c.entry(Action::AuditReport) };
    let html = match q.format.as_deref() {
        None | Some("json") => false,
        Some("html") => true,
        Some(other) => {
            return refuse(
                &s,
                base,
                Outcome::Denied,
                StatusCode::BAD_REQUEST,
                format!("format `{}`: json or html", for_audit(other)),
            );
        }
    };
    let rules = match report_rules(&q) {
        Ok(r) => r,
        Err(e) => return refuse(&s, base, Outcome::Denied, StatusCode::BAD_REQUEST, e),
    };
    let (from_ms, to_ms) = match (report_bound(&q.from, &rules.tz, false), report_bound(&q.to, &rules.tz, true)) {
        (Ok(f), Ok(t)) if f < t => (f, t),
        (Ok(_), Ok(_)) => {
            return refuse(
                &s,
                base,
                Outcome::Denied,
                StatusCode::BAD_REQUEST,
                "the period ends before it starts".into(),
            );
        }
        (Err(e), _) | (_, Err(e)) => return refuse(&s, base, Outcome::Denied, StatusCode::BAD_REQUEST, e),
    };
    let st = s.clone();
    let rules2 = rules.clone();
    let report = tokio::task::spawn_blocking(move || compliance(&st, from_ms, to_ms, &rules2))
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let report = match report {
        Ok(r) => r,
        Err(e) => return refuse(&s, base, Outcome::Error, StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    };
    let chain = if report.chain.ok {
        "chain verified".to_string()
    } else {
        format!("chain BROKEN: {}", report.chain.problem.as_deref().unwrap_or(""))
    };
    let detail = format!("period {} to {}; {} flag(s); {chain}", report.from, report.to, report.flags.total);
    audit(&s, NewAuditEntry { outcome: Some(Outcome::Ok), result_count: Some(report.flags.total), detail, ..base })?;
    if html { Ok(Html(crate::access::report::html(&report)).into_response()) } else { Ok(Json(report).into_response()) }
}

fn roles_json(roles: &[Role]) -> Vec<&'static str> {
    roles.iter().map(|r| r.as_str()).collect()
}

async fn list_users(State(s): St, c: Caller) -> Res<Json<Value>> {
    require(&s, &c, Permission::ManageUsers, Action::UsersViewed, "")?;
    let users = s.users.list().map_err(user_error)?;
    audit(
        &s,
        NewAuditEntry {
            outcome: Some(Outcome::Ok),
            result_count: Some(users.len() as u64),
            ..c.entry(Action::UsersViewed)
        },
    )?;
    let out: Vec<Value> = users
        .iter()
        .map(|u| {
            json!({"username": u.username, "display_name": u.display_name, "organisation": u.organisation, "job_title": u.job_title,
                   "roles": roles_json(&u.roles), "pending_roles": u.pending_roles.as_ref().map(|p| json!({"roles": roles_json(&p.roles), "granted_by": p.by})),
                   "must_change_password": u.must_change_password, "locked": u.locked.is_some(), "training": u.training,
                   "last_login_ms": u.last_login_ms})
        })
        .collect();
    Ok(Json(json!({ "users": out })))
}

/// An administrator acting on users; the user service audits each change (and refuses it when the audit
/// log cannot record it).
fn admin(s: &ApiState, c: Caller, object: &str) -> Res<crate::access::service::Actor> {
    require(s, &c, Permission::ManageUsers, Action::UserChanged, object)?;
    Ok(crate::access::service::Actor {
        user: c.user.username.clone(),
        organisation: c.user.organisation.clone(),
        source: c.source,
    })
}

fn user_summary(u: &User) -> Value {
    json!({"username": u.username, "roles": roles_json(&u.roles), "pending_roles": u.pending_roles.as_ref().map(|p| roles_json(&p.roles)),
           "must_change_password": u.must_change_password, "locked": u.locked.is_some(), "training": u.training})
}

#[derive(Deserialize)]
struct AddUserBody {
    username: String,
    display_name: String,
    #[serde(default)]
    organisation: Option<String>,
    job_title: String,
    roles: Vec<Role>,
    password: String,
}

/// A new account: its roles wait for a second administrator and its password is temporary.
async fn add_user(State(s): St, c: Caller, Json(b): Json<AddUserBody>) -> Res<Json<Value>> {
    let by = admin(&s, c, &b.username)?;
    let new = crate::access::users::NewUser {
        username: b.username,
        display_name: b.display_name,
        organisation: b.organisation.unwrap_or_else(|| by.organisation.clone()),
        job_title: b.job_title,
        roles: b.roles,
    };
    let st = s.clone();
    let u = tokio::task::spawn_blocking(move || st.users.admin_add_user(&by, new, &b.password, now_ms()))
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(user_error)?;
    Ok(Json(user_summary(&u)))
}

#[derive(Deserialize)]
struct TrainingBody {
    course: String,
    completed: jiff::Timestamp,
    expires: jiff::Timestamp,
}

async fn user_training(
    State(s): St,
    c: Caller,
    Path(name): Path<String>,
    Json(b): Json<TrainingBody>,
) -> Res<Json<Value>> {
    let by = admin(&s, c, &name)?;
    let t = crate::access::users::Training {
        course: b.course,
        completed_ms: b.completed.as_millisecond(),
        expires_ms: b.expires.as_millisecond(),
    };
    let u = off_worker(|| s.users.record_training(&by, &name, t, now_ms())).map_err(user_error)?;
    Ok(Json(user_summary(&u)))
}

#[derive(Deserialize)]
struct LockBody {
    reason: String,
}

async fn user_lock(State(s): St, c: Caller, Path(name): Path<String>, Json(b): Json<LockBody>) -> Res<Json<Value>> {
    let by = admin(&s, c, &name)?;
    let u = off_worker(|| s.users.admin_lock(&by, &name, &b.reason, now_ms())).map_err(user_error)?;
    Ok(Json(user_summary(&u)))
}

async fn user_unlock(State(s): St, c: Caller, Path(name): Path<String>, _body: Bytes) -> Res<Json<Value>> {
    let by = admin(&s, c, &name)?;
    let u = off_worker(|| s.users.unlock(&by, &name, now_ms())).map_err(user_error)?;
    Ok(Json(user_summary(&u)))
}

/// A second administrator approves the roles another granted.
async fn user_approve(State(s): St, c: Caller, Path(name): Path<String>, _body: Bytes) -> Res<Json<Value>> {
    let by = admin(&s, c, &name)?;
    let u = off_worker(|| s.users.approve_roles(&by, &name, now_ms())).map_err(user_error)?;
    Ok(Json(user_summary(&u)))
}

#[derive(Deserialize)]
struct PasswordBody {
    password: String,
}

/// An administrator's reset: temporary, the user must change it at the next login.
async fn user_password(
    State(s): St,
    c: Caller,
    Path(name): Path<String>,
    Json(b): Json<PasswordBody>,
) -> Res<Json<Value>> {
    let by = admin(&s, c, &name)?;
    let st = s.clone();
    let u = tokio::task::spawn_blocking(move || st.users.reset_password(&by, &name, &b.password, now_ms()))
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(user_error)?;
    Ok(Json(user_summary(&u)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_list_has_each_route_once_and_exempts_only_reads_of_nothing_stored() {
        let mut seen = std::collections::BTreeSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.method, r.path)), "{} {} twice", r.method, r.path);
            if let Audit::Exempt(_) = r.audit {
                assert_eq!(r.method, "get", "{}: a change is never exempt", r.path);
                assert!(!r.path.starts_with("/api/") || r.path == "/api/me", "{}", r.path);
            }
        }
    }
}
