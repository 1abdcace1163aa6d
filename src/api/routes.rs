//! Route handlers. Each checks the session and the role table, audits, then answers.

use super::ApiState;
use crate::access::export::{export, Exporter};
use crate::access::release::{self, NewRequest, Request};
use crate::access::roles::{self, Permission, Role};
use crate::access::service::UserError;
use crate::access::users::User;
use crate::access::{Action, NewAuditEntry, Outcome};
use crate::store::{Decision, HoldRequest, ImageKind, PlatePattern, ReadId, StoredRead, Verification};
use crate::uplink::payload::ReadV1;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;

type St = State<Arc<ApiState>>;

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

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/", get(console))
        .route("/policy", get(policy_html))
        .route("/policy.md", get(policy_md))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/me", get(me))
        .route("/api/search", get(search))
        .route("/api/reads/{id}", get(read_detail))
        .route("/api/reads/{id}/crop", get(read_crop))
        .route("/api/holds", post(place_hold))
        .route("/api/holds/release", post(release_hold))
        .route("/api/alerts/{id}/decision", post(alert_decision))
        .route("/api/releases", get(list_releases).post(request_release))
        .route("/api/releases/{id}/decision", post(decide_release))
        .route("/api/releases/{id}/export", post(export_release))
        .route("/api/audit", get(audit_view))
        .route("/api/users", get(list_users).post(add_user))
        .route("/api/users/{name}/training", post(user_training))
        .route("/api/users/{name}/lock", post(user_lock))
        .route("/api/users/{name}/unlock", post(user_unlock))
        .route("/api/users/{name}/password", post(user_password))
        .with_state(state)
}

async fn console() -> impl IntoResponse {
    (
        [(header::CONTENT_SECURITY_POLICY, "default-src 'self'; img-src 'self' blob:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"), (header::CACHE_CONTROL, "no-store")],
        Html(include_str!("console.html")),
    )
}

/// The role table as the policy states it.
pub fn role_lines() -> Vec<crate::access::policy::RoleLine> {
    roles::PERMISSIONS
        .iter()
        .map(|(r, ps)| crate::access::policy::RoleLine { role: r.as_str().to_string(), permissions: ps.iter().map(|p| p.as_str().replace('_', " ")).collect() })
        .collect()
}

async fn policy_html(State(s): St) -> impl IntoResponse {
    Html(crate::access::policy::html(&s.config, &role_lines()))
}

async fn policy_md(State(s): St) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], crate::access::policy::markdown(&s.config, &role_lines()))
}

/// The signed-in user of a request, re-checked (lock, training) on every call.
struct Caller {
    user: User,
    source: String,
}

impl Caller {
    fn entry(&self, action: Action) -> NewAuditEntry {
        NewAuditEntry {
            user: self.user.username.clone(),
            organisation: self.user.organisation.clone(),
            source: self.source.clone(),
            action: Some(action),
            ..Default::default()
        }
    }
}

fn user_error(e: UserError) -> ApiError {
    match e {
        UserError::Audit(_) | UserError::Store(_) => err(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        UserError::NotFound(_) => err(StatusCode::NOT_FOUND, e.to_string()),
        UserError::Denied(_) | UserError::Session(_) => err(StatusCode::UNAUTHORIZED, e.to_string()),
        _ => err(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

fn caller(s: &ApiState, headers: &HeaderMap, addr: SocketAddr) -> Res<Caller> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| err(StatusCode::UNAUTHORIZED, "log in first"))?;
    let (user, _) = s.users.session_user(token, now_ms()).map_err(|e| match e {
        UserError::Audit(_) | UserError::Store(_) => err(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        other => err(StatusCode::UNAUTHORIZED, other.to_string()),
    })?;
    Ok(Caller { user, source: addr.to_string() })
}

/// Refuses (and audits the refusal) unless the caller's roles allow `p`.
fn require(s: &ApiState, c: &Caller, p: Permission, action: Action, object: &str) -> Res<()> {
    if roles::may(&c.user.roles, p) {
        return Ok(());
    }
    audit(s, NewAuditEntry { object: object.into(), outcome: Some(Outcome::Denied), detail: format!("role lacks {}", p.as_str()), ..c.entry(action) })?;
    Err(err(StatusCode::FORBIDDEN, format!("your role may not {}", p.as_str().replace('_', " "))))
}

/// Writes an audit entry; if that fails, the access it records does not happen.
fn audit(s: &ApiState, e: NewAuditEntry) -> Res<u64> {
    s.audit.record(e).map_err(|e| {
        log::error!("audit write failed, access refused: {e}");
        err(StatusCode::SERVICE_UNAVAILABLE, "the audit log cannot record this access, so it is refused")
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

async fn login(State(s): St, ConnectInfo(addr): ConnectInfo<SocketAddr>, Json(b): Json<LoginBody>) -> Res<Json<Value>> {
    let st = s.clone();
    let (user, session) = tokio::task::spawn_blocking(move || st.users.login(&b.username, &b.password, &addr.to_string(), now_ms()))
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|e| match e {
            UserError::Audit(_) | UserError::Store(_) => err(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            other => err(StatusCode::UNAUTHORIZED, other.to_string()),
        })?;
    Ok(Json(json!({ "token": session.token, "user": user_json(&s, &user) })))
}

async fn logout(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>) -> Res<Json<Value>> {
    let token = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).unwrap_or("");
    s.users.logout(token, &addr.to_string()).map_err(user_error)?;
    Ok(Json(json!({ "ok": true })))
}

async fn me(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>) -> Res<Json<Value>> {
    let c = caller(&s, &headers, addr)?;
    Ok(Json(user_json(&s, &c.user)))
}

/// Why a search or view happens: policy requires both.
#[derive(Deserialize)]
struct Why {
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    case_number: String,
}

fn check_why(s: &ApiState, why: &Why, base: NewAuditEntry) -> Res<()> {
    let problem = if !s.config.api.search_purposes.iter().any(|p| p == &why.purpose) {
        Some(format!("a purpose from the configured list is required ({})", s.config.api.search_purposes.join(", ")))
    } else if why.case_number.trim().is_empty() {
        Some("a case or incident number is required".to_string())
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(p) => {
            audit(s, NewAuditEntry { outcome: Some(Outcome::Denied), detail: p.clone(), purpose: why.purpose.clone(), case_number: why.case_number.clone(), ..base })?;
            Err(err(StatusCode::BAD_REQUEST, p))
        }
    }
}

#[derive(Deserialize)]
struct SearchQuery {
    plate: String,
    #[serde(default)]
    purpose: String,
    #[serde(default)]
    case_number: String,
    from: Option<jiff::Timestamp>,
    to: Option<jiff::Timestamp>,
    camera: Option<String>,
    #[serde(default)]
    page: usize,
    per_page: Option<usize>,
}

async fn search(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Query(q): Query<SearchQuery>) -> Res<Json<Value>> {
    let c = caller(&s, &headers, addr)?;
    require(&s, &c, Permission::Search, Action::Search, "")?;
    let base = NewAuditEntry { query: q.plate.clone(), ..c.entry(Action::Search) };
    check_why(&s, &Why { purpose: q.purpose.clone(), case_number: q.case_number.clone() }, base.clone())?;
    let pattern = match PlatePattern::parse(&q.plate) {
        Ok(p) => p,
        Err(e) => {
            audit(&s, NewAuditEntry { outcome: Some(Outcome::Denied), detail: e.to_string(), purpose: q.purpose.clone(), case_number: q.case_number.clone(), ..base })?;
            return Err(err(StatusCode::BAD_REQUEST, e.to_string()));
        }
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
        .filter(|r| r.captured_at_ms >= from && r.captured_at_ms <= to && q.camera.as_ref().is_none_or(|cam| &r.camera_id == cam))
        .collect();
    let per_page = q.per_page.unwrap_or(50).clamp(1, 500);
    let page: Vec<ReadV1> = reads.iter().skip(q.page * per_page).take(per_page).map(ReadV1::from).collect();
    audit(&s, NewAuditEntry { outcome: Some(Outcome::Ok), result_count: Some(reads.len() as u64), purpose: q.purpose, case_number: q.case_number, ..base })?;
    Ok(Json(json!({ "total": reads.len(), "page": q.page, "per_page": per_page, "reads": page })))
}

fn parse_id(id: &str) -> Res<ReadId> {
    id.parse::<uuid::Uuid>().map(ReadId).map_err(|_| err(StatusCode::BAD_REQUEST, "not a read id"))
}

async fn read_detail(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Path(id): Path<String>, Query(why): Query<Why>) -> Res<Json<Value>> {
    let c = caller(&s, &headers, addr)?;
    require(&s, &c, Permission::ViewRead, Action::ViewRead, &id)?;
    let base = NewAuditEntry { object: id.clone(), ..c.entry(Action::ViewRead) };
    check_why(&s, &why, base.clone())?;
    let rid = parse_id(&id)?;
    let read = s.store.get_read(rid).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    audit(&s, NewAuditEntry { outcome: Some(if read.is_some() { Outcome::Ok } else { Outcome::Error }), result_count: Some(read.is_some() as u64), purpose: why.purpose, case_number: why.case_number, ..base })?;
    let read = read.ok_or_else(|| err(StatusCode::NOT_FOUND, "no such read"))?;
    let holds = s.store.holds_for(rid).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let mut v = serde_json::to_value(ReadV1::from(&read)).unwrap_or_default();
    v["has_crop"] = json!(read.has_crop);
    v["holds"] = serde_json::to_value(holds).unwrap_or_default();
    Ok(Json(v))
}

async fn read_crop(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Path(id): Path<String>, Query(why): Query<Why>) -> Res<Response> {
    let c = caller(&s, &headers, addr)?;
    require(&s, &c, Permission::ViewImage, Action::ViewImage, &id)?;
    let base = NewAuditEntry { object: id.clone(), ..c.entry(Action::ViewImage) };
    check_why(&s, &why, base.clone())?;
    let img = s.store.image(parse_id(&id)?, ImageKind::Crop).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    audit(&s, NewAuditEntry { outcome: Some(if img.is_some() { Outcome::Ok } else { Outcome::Error }), result_count: Some(img.is_some() as u64), purpose: why.purpose, case_number: why.case_number, ..base })?;
    let img = img.ok_or_else(|| err(StatusCode::NOT_FOUND, "no crop for this read"))?;
    Ok(([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "no-store")], img).into_response())
}

#[derive(Deserialize)]
struct HoldBody {
    read_id: String,
    case_number: String,
    reason: String,
    expires_at: Option<jiff::Timestamp>,
}

async fn place_hold(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Json(b): Json<HoldBody>) -> Res<Json<Value>> {
    let c = caller(&s, &headers, addr)?;
    require(&s, &c, Permission::PlaceHold, Action::HoldPlaced, &b.read_id)?;
    let rid = parse_id(&b.read_id)?;
    let base = NewAuditEntry { object: b.read_id.clone(), case_number: b.case_number.clone(), detail: b.reason.clone(), ..c.entry(Action::HoldPlaced) };
    let req = HoldRequest { placed_by: c.user.username.clone(), case_number: b.case_number, reason: b.reason, expires_at_ms: b.expires_at.map(|t| t.as_millisecond()) };
    audit(&s, NewAuditEntry { outcome: Some(Outcome::Ok), ..base.clone() })?;
    match s.store.place_hold(rid, req, now_ms()) {
        Ok(h) => Ok(Json(json!({ "hold_id": h.id, "read_id": h.read_id }))),
        Err(e) => {
            let _ = audit(&s, NewAuditEntry { outcome: Some(Outcome::Error), detail: e.to_string(), ..base });
            Err(err(StatusCode::BAD_REQUEST, e.to_string()))
        }
    }
}

#[derive(Deserialize)]
struct ReleaseHoldBody {
    read_id: String,
    hold_id: uuid::Uuid,
    reason: String,
}

async fn release_hold(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Json(b): Json<ReleaseHoldBody>) -> Res<Json<Value>> {
    let c = caller(&s, &headers, addr)?;
    require(&s, &c, Permission::ReleaseHold, Action::HoldReleased, &b.read_id)?;
    let rid = parse_id(&b.read_id)?;
    audit(&s, NewAuditEntry { object: format!("{}/{}", b.read_id, b.hold_id), detail: b.reason.clone(), outcome: Some(Outcome::Ok), ..c.entry(Action::HoldReleased) })?;
    let h = s.store.release_hold(rid, b.hold_id, &c.user.username, &b.reason, now_ms()).map_err(|e| err(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(Json(json!({ "hold_id": h.id, "released": true })))
}

#[derive(Deserialize)]
struct AlertDecisionBody {
    decision: Decision,
    #[serde(default)]
    note: String,
}

async fn alert_decision(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Path(id): Path<uuid::Uuid>, Json(b): Json<AlertDecisionBody>) -> Res<Json<Value>> {
    let action = if b.decision == Decision::Verified { Action::AlertVerified } else { Action::AlertRejected };
    let c = caller(&s, &headers, addr)?;
    require(&s, &c, Permission::VerifyAlert, action, &id.to_string())?;
    audit(&s, NewAuditEntry { object: id.to_string(), detail: b.note.clone(), outcome: Some(Outcome::Ok), ..c.entry(action) })?;
    let v = Verification { decision: b.decision, by: c.user.username.clone(), at_ms: now_ms(), note: b.note };
    let rec = s.store.verify_alert(id, v).map_err(|e| err(StatusCode::BAD_REQUEST, e.to_string()))?;
    Ok(Json(json!({ "alert": rec.id, "decision": b.decision })))
}

async fn list_releases(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>) -> Res<Json<Value>> {
    let c = caller(&s, &headers, addr)?;
    if !roles::may(&c.user.roles, Permission::RequestRelease) && !roles::may(&c.user.roles, Permission::ApproveRelease) {
        return Err(err(StatusCode::FORBIDDEN, "your role may not see release requests"));
    }
    let all = s.store.releases().map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "requests": all })))
}

async fn request_release(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Json(b): Json<NewRequest>) -> Res<Json<Value>> {
    let c = caller(&s, &headers, addr)?;
    require(&s, &c, Permission::RequestRelease, Action::ReleaseRequested, "")?;
    let base = NewAuditEntry { purpose: b.purpose.clone(), case_number: b.case_number.clone(), detail: format!("{} ({})", b.agency, b.jurisdiction), ..c.entry(Action::ReleaseRequested) };
    if let Err(e) = release::check_new(&b, &s.config.access.allowed_jurisdictions) {
        audit(&s, NewAuditEntry { outcome: Some(Outcome::Denied), detail: e.to_string(), ..base })?;
        return Err(err(StatusCode::BAD_REQUEST, e.to_string()));
    }
    let r = Request { id: uuid::Uuid::now_v7(), request: b, entered_by: c.user.username.clone(), entered_at_ms: now_ms(), decision: None, exports: vec![] };
    audit(&s, NewAuditEntry { object: r.id.to_string(), outcome: Some(Outcome::Ok), ..base })?;
    s.store.put_release(&r).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "id": r.id })))
}

#[derive(Deserialize)]
struct ReleaseDecisionBody {
    approved: bool,
    #[serde(default)]
    note: String,
}

fn load_release(s: &ApiState, id: uuid::Uuid) -> Res<Request> {
    s.store.release(id).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?.ok_or_else(|| err(StatusCode::NOT_FOUND, "no such release request"))
}

async fn decide_release(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Path(id): Path<uuid::Uuid>, Json(b): Json<ReleaseDecisionBody>) -> Res<Json<Value>> {
    let c = caller(&s, &headers, addr)?;
    require(&s, &c, Permission::ApproveRelease, Action::ReleaseDecided, &id.to_string())?;
    let mut r = load_release(&s, id)?;
    let base = NewAuditEntry { object: id.to_string(), case_number: r.request.case_number.clone(), purpose: r.request.purpose.clone(), ..c.entry(Action::ReleaseDecided) };
    if let Err(e) = release::decide(&mut r, &c.user.username, b.approved, &b.note, now_ms()) {
        audit(&s, NewAuditEntry { outcome: Some(Outcome::Denied), detail: e.to_string(), ..base })?;
        return Err(err(StatusCode::CONFLICT, e.to_string()));
    }
    audit(&s, NewAuditEntry { outcome: Some(Outcome::Ok), detail: if b.approved { "approved".into() } else { "refused".into() }, ..base })?;
    s.store.put_release(&r).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "id": id, "approved": b.approved })))
}

async fn export_release(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Path(id): Path<uuid::Uuid>) -> Res<Json<Value>> {
    let c = caller(&s, &headers, addr)?;
    require(&s, &c, Permission::Export, Action::Export, &id.to_string())?;
    let mut r = load_release(&s, id)?;
    let st = s.clone();
    let (user, org, source) = (c.user.username.clone(), c.user.organisation.clone(), c.source.clone());
    let req = r.clone();
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
    r.exports.push(bundle.dir.display().to_string());
    s.store.put_release(&r).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    Ok(Json(json!({ "dir": bundle.dir, "manifest": bundle.manifest })))
}

#[derive(Deserialize)]
struct AuditQuery {
    user: Option<String>,
    action: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
}

async fn audit_view(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Query(q): Query<AuditQuery>) -> Res<Json<Value>> {
    let c = caller(&s, &headers, addr)?;
    require(&s, &c, Permission::ViewAudit, Action::AuditViewed, "")?;
    let limit = q.limit.unwrap_or(100).clamp(1, 10_000);
    let entries = s.audit_log.latest(limit, q.user.as_deref(), q.action.as_deref()).map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    audit(&s, NewAuditEntry { outcome: Some(Outcome::Ok), result_count: Some(entries.len() as u64), detail: format!("user={:?} action={:?}", q.user, q.action), ..c.entry(Action::AuditViewed) })?;
    Ok(Json(json!({ "entries": entries })))
}

async fn list_users(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>) -> Res<Json<Value>> {
    let c = caller(&s, &headers, addr)?;
    if !roles::may(&c.user.roles, Permission::ManageUsers) {
        return Err(err(StatusCode::FORBIDDEN, "your role may not manage users"));
    }
    let users = s.users.list().map_err(user_error)?;
    let out: Vec<Value> = users
        .iter()
        .map(|u| json!({"username": u.username, "display_name": u.display_name, "organisation": u.organisation, "job_title": u.job_title,
                         "roles": u.roles.iter().map(|r: &Role| r.as_str()).collect::<Vec<_>>(), "locked": u.locked.is_some(), "training": u.training}))
        .collect();
    Ok(Json(json!({ "users": out })))
}

/// An administrator acting on users; the user service audits each change (and refuses it when the audit
/// log cannot record it).
fn admin(s: &ApiState, headers: &HeaderMap, addr: SocketAddr, object: &str) -> Res<crate::access::service::Actor> {
    let c = caller(s, headers, addr)?;
    require(s, &c, Permission::ManageUsers, Action::UserChanged, object)?;
    Ok(crate::access::service::Actor { user: c.user.username.clone(), organisation: c.user.organisation.clone(), source: c.source })
}

fn user_summary(u: &User) -> Value {
    json!({"username": u.username, "roles": u.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>(), "locked": u.locked.is_some(), "training": u.training})
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

async fn add_user(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Json(b): Json<AddUserBody>) -> Res<Json<Value>> {
    let by = admin(&s, &headers, addr, &b.username)?;
    let new = crate::access::users::NewUser {
        username: b.username,
        display_name: b.display_name,
        organisation: b.organisation.unwrap_or_else(|| by.organisation.clone()),
        job_title: b.job_title,
        roles: b.roles,
    };
    let st = s.clone();
    let u = tokio::task::spawn_blocking(move || st.users.add_user(&by, new, &b.password, now_ms()))
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

async fn user_training(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Path(name): Path<String>, Json(b): Json<TrainingBody>) -> Res<Json<Value>> {
    let by = admin(&s, &headers, addr, &name)?;
    let t = crate::access::users::Training { course: b.course, completed_ms: b.completed.as_millisecond(), expires_ms: b.expires.as_millisecond() };
    let u = s.users.record_training(&by, &name, t, now_ms()).map_err(user_error)?;
    Ok(Json(user_summary(&u)))
}

#[derive(Deserialize)]
struct LockBody {
    reason: String,
}

async fn user_lock(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Path(name): Path<String>, Json(b): Json<LockBody>) -> Res<Json<Value>> {
    let by = admin(&s, &headers, addr, &name)?;
    let u = s.users.lock(&by, &name, &b.reason, now_ms()).map_err(user_error)?;
    Ok(Json(user_summary(&u)))
}

async fn user_unlock(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Path(name): Path<String>) -> Res<Json<Value>> {
    let by = admin(&s, &headers, addr, &name)?;
    let u = s.users.unlock(&by, &name, now_ms()).map_err(user_error)?;
    Ok(Json(user_summary(&u)))
}

#[derive(Deserialize)]
struct PasswordBody {
    password: String,
}

async fn user_password(State(s): St, headers: HeaderMap, ConnectInfo(addr): ConnectInfo<SocketAddr>, Path(name): Path<String>, Json(b): Json<PasswordBody>) -> Res<Json<Value>> {
    let by = admin(&s, &headers, addr, &name)?;
    let st = s.clone();
    let u = tokio::task::spawn_blocking(move || st.users.set_password(&by, &name, &b.password, now_ms()))
        .await
        .map_err(|e| err(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(user_error)?;
    Ok(Json(user_summary(&u)))
}
