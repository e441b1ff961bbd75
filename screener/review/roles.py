"""Pure: the SQL that separates the worker from the reviewers and an auditor on PostgreSQL (`screener db roles`).

Three group roles, and the staff's login roles made members of them:

- ``screener_worker``: records and decides deposits, opens and escalates holds, moves cursors, and may credit a
  hold as the system only when it was a plain HOLD (never BLOCK) that a re-screen cleared;
- ``screener_reviewer``: releases, approves, rejects, resolves flags, each under its own login;
- ``screener_auditor``: reads.

Privileges say what each may touch; triggers say which transitions each may make, checked against
``session_user`` (the login; ``SET ROLE`` cannot change it), so a reviewer with psql or a compromised daemon
cannot do what the CLI would refuse: a hold's requester and resolver must be the session's own login, the
approver must not be the requester, and a post/void/reject-move ledger transfer is only accepted, at commit,
together with the hold resolution it belongs to. Run as the schema's owner: the groups own nothing, so no member
can drop or disable a trigger.
"""

from __future__ import annotations

import re

from screener_base.errors import ConfigError

WORKER, REVIEWER, AUDITOR = "screener_worker", "screener_reviewer", "screener_auditor"
_ROLE_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
# SQLSTATE insufficient_privilege: the CLI turns it into one line naming the refusal.
REFUSED_SQLSTATE = "42501"

_FN_HEAD = "RETURNS trigger LANGUAGE plpgsql SET search_path = pg_catalog, public AS $fn$"
_REFUSE = f"USING ERRCODE = '{REFUSED_SQLSTATE}'"


def _holds_guard(four_eyes_above_units: int) -> str:
    """The holds trigger; the four-eyes threshold is written in (set by the owner, not by a reviewer's config)."""
    return f"""
CREATE OR REPLACE FUNCTION public.screener_guard_holds() {_FN_HEAD}
DECLARE
  reviewer boolean := pg_has_role(session_user, '{REVIEWER}', 'MEMBER');
  worker boolean := pg_has_role(session_user, '{WORKER}', 'MEMBER');
  d record;
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.state <> 'open' OR NEW.release_requested_by IS NOT NULL OR NEW.resolved_by IS NOT NULL THEN
      RAISE EXCEPTION 'a hold is opened open, unrequested and unresolved' {_REFUSE};
    END IF;
    RETURN NEW;
  END IF;
  IF OLD.state IN ('released', 'rejected') THEN
    RAISE EXCEPTION 'hold % is already %: a resolved hold never changes', OLD.id, OLD.state {_REFUSE};
  END IF;
  IF OLD.verdict = 'BLOCK' AND NEW.verdict IS DISTINCT FROM 'BLOCK' THEN
    RAISE EXCEPTION 'hold %: a BLOCK verdict is never lowered', OLD.id {_REFUSE};
  END IF;
  IF NEW.state = OLD.state AND NEW.release_requested_by IS NOT DISTINCT FROM OLD.release_requested_by
     AND NEW.resolved_by IS NOT DISTINCT FROM OLD.resolved_by THEN
    RETURN NEW;  -- verdict (never lowered), reason, SLA marks: escalations by the worker
  END IF;
  SELECT amount_raw, decimals, findings INTO d FROM public.deposits WHERE id = NEW.deposit_id;
  IF NEW.state = 'awaiting_approval' THEN
    IF NOT reviewer OR NEW.release_requested_by IS DISTINCT FROM session_user::text THEN
      RAISE EXCEPTION 'only a reviewer may request a release, under their own login (session %)', session_user
        {_REFUSE};
    END IF;
  ELSIF NEW.state = 'released' AND NEW.resolved_by = 'system' THEN
    IF NOT worker OR reviewer OR NEW.verdict <> 'HOLD' OR EXISTS (
        SELECT 1 FROM json_array_elements(d.findings) f
         WHERE f->>'rule_id' <> 'unavailable' AND f->>'severity' <> 'info') THEN
      RAISE EXCEPTION 'only the worker may credit as the system, and only a HOLD that was unavailable alone'
        {_REFUSE};
    END IF;
  ELSIF NEW.state IN ('released', 'rejected') THEN
    IF NOT reviewer OR NEW.resolved_by IS DISTINCT FROM session_user::text THEN
      RAISE EXCEPTION 'only a reviewer may release or reject a hold, under their own login (session %)',
        session_user {_REFUSE};
    END IF;
    IF NEW.state = 'released' AND OLD.state = 'awaiting_approval' THEN
      IF OLD.release_requested_by = session_user::text THEN
        RAISE EXCEPTION 'four-eyes: % requested this release and cannot approve it', session_user {_REFUSE};
      END IF;
    ELSIF NEW.state = 'released' AND (NEW.verdict = 'BLOCK'
        OR d.amount_raw >= {four_eyes_above_units}::numeric * 10::numeric ^ d.decimals) THEN
      RAISE EXCEPTION 'four-eyes: a BLOCK verdict or at least {four_eyes_above_units} tokens needs a second reviewer'
        {_REFUSE};
    END IF;
  ELSIF NOT (NEW.state = 'open' AND OLD.state = 'awaiting_approval' AND NEW.release_requested_by IS NULL) THEN
    RAISE EXCEPTION 'hold state % -> % is not a transition anyone may make', OLD.state, NEW.state {_REFUSE};
  END IF;
  RETURN NEW;
END
$fn$
"""


_FLAGS_GUARD = f"""
CREATE OR REPLACE FUNCTION public.screener_guard_flags() {_FN_HEAD}
BEGIN
  IF OLD.state = 'resolved' THEN
    RAISE EXCEPTION 'flag % is resolved: it never changes', OLD.id {_REFUSE};
  END IF;
  IF NEW.state IS DISTINCT FROM OLD.state OR NEW.resolved_by IS DISTINCT FROM OLD.resolved_by THEN
    IF NOT pg_has_role(session_user, '{REVIEWER}', 'MEMBER') OR NEW.resolved_by IS DISTINCT FROM session_user::text
    THEN
      RAISE EXCEPTION 'only a reviewer may resolve a flag, under their own login (session %)', session_user
        USING ERRCODE = '{REFUSED_SQLSTATE}';
    END IF;
  END IF;
  RETURN NEW;
END
$fn$
"""

# Deferred to commit: the transfer is inserted before the hold row changes, and must arrive with it.
_TRANSFERS_GUARD = f"""
CREATE OR REPLACE FUNCTION public.screener_guard_transfers() {_FN_HEAD}
DECLARE
  h record;
BEGIN
  IF NEW.step = 'credit' THEN
    IF NOT pg_has_role(session_user, '{WORKER}', 'MEMBER') OR pg_has_role(session_user, '{REVIEWER}', 'MEMBER')
       OR EXISTS (SELECT 1 FROM public.ledger_transfers t WHERE t.id = replace(NEW.id, ':credit', ':hold')) THEN
      RAISE EXCEPTION 'only the worker credits a deposit at once, and never a held one (transfer %)', NEW.id
        {_REFUSE};
    END IF;
    RETURN NULL;
  END IF;
  IF NEW.step NOT IN ('post', 'void', 'reject-move') THEN
    RETURN NULL;
  END IF;
  SELECT state, resolved_by, verdict INTO h FROM public.holds
   WHERE pending_transfer_id = coalesce(NEW.pending_id, replace(NEW.id, ':reject-move', ':hold'));
  IF h IS NULL OR h.state NOT IN ('released', 'rejected') THEN
    RAISE EXCEPTION 'ledger transfer % has no hold resolution with it', NEW.id USING ERRCODE = '{REFUSED_SQLSTATE}';
  END IF;
  IF h.resolved_by = 'system' THEN
    IF NEW.step <> 'post' OR h.verdict <> 'HOLD' THEN
      RAISE EXCEPTION 'the system may only post a cleared HOLD (transfer %)', NEW.id
        USING ERRCODE = '{REFUSED_SQLSTATE}';
    END IF;
  ELSIF NOT pg_has_role(session_user, '{REVIEWER}', 'MEMBER') OR h.resolved_by IS DISTINCT FROM session_user::text THEN
    RAISE EXCEPTION 'ledger transfer % needs the reviewer who resolved the hold (session %)', NEW.id, session_user
      USING ERRCODE = '{REFUSED_SQLSTATE}';
  END IF;
  RETURN NULL;
END
$fn$
"""

_TRIGGERS = (
    "DROP TRIGGER IF EXISTS screener_guard_holds ON holds",
    "CREATE TRIGGER screener_guard_holds BEFORE INSERT OR UPDATE ON holds FOR EACH ROW "
    "EXECUTE FUNCTION public.screener_guard_holds()",
    "DROP TRIGGER IF EXISTS screener_guard_flags ON review_flags",
    "CREATE TRIGGER screener_guard_flags BEFORE UPDATE ON review_flags FOR EACH ROW "
    "EXECUTE FUNCTION public.screener_guard_flags()",
    "DROP TRIGGER IF EXISTS screener_guard_transfers ON ledger_transfers",
    "CREATE CONSTRAINT TRIGGER screener_guard_transfers AFTER INSERT ON ledger_transfers "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.screener_guard_transfers()",
)


def check_role_name(name: str) -> str:
    """A plain lowercase PostgreSQL role name (it is put into SQL, so nothing else is accepted)."""
    if not _ROLE_NAME.match(name or ""):
        raise ConfigError(
            f"role name {name!r} is not a plain lowercase PostgreSQL name",
            "use letters a-z, digits and _ (at most 63), starting with a letter or _",
        )
    return name


def _ensure_role(name: str, login: bool) -> str:
    kind = "LOGIN" if login else "NOLOGIN"
    return f"DO $$ BEGIN CREATE ROLE {name} {kind}; EXCEPTION WHEN duplicate_object THEN NULL; END $$"


def role_statements(
    worker: str, reviewers: list[str], auditor: str | None, tables: list[str], four_eyes_above_units: int
) -> list[str]:
    """Idempotent SQL: the groups, their members, their privileges on ``tables``, and the guard triggers.

    Login roles that do not exist yet are created without a password: the DBA sets up how each one logs in.
    """
    members = {WORKER: [worker], REVIEWER: reviewers, AUDITOR: [auditor] if auditor else []}
    names = [check_role_name(n) for group in members.values() for n in group]
    if len(set(names)) != len(names):
        raise ConfigError(
            "a login role is named twice (worker, reviewers and auditor must be different people)",
            "give each role once; four-eyes needs at least two distinct reviewers",
        )
    if len(reviewers) < 2:
        raise ConfigError("four-eyes needs at least two reviewers", "pass --reviewers NAME NAME ...")
    sql = [_ensure_role(group, login=False) for group in members]
    for group, logins in members.items():
        for name in logins:
            sql += [_ensure_role(name, login=True), f"GRANT {group} TO {name}"]
    return [
        *sql,
        *_grants(tables),
        _holds_guard(four_eyes_above_units).strip(),
        _FLAGS_GUARD.strip(),
        _TRANSFERS_GUARD.strip(),
        *_TRIGGERS,
    ]


# Rows a role may delete: the worker rewinds kept headers and unscreened deposits of replaced blocks; staff remove
# deposit addresses. Nothing else is ever deleted, and audit events are only ever added.
_DELETES = {WORKER: ("chain_headers", "deposits", "deposit_addresses"), REVIEWER: ("deposit_addresses",)}


def _grants(tables: list[str]) -> list[str]:
    groups = f"{WORKER}, {REVIEWER}, {AUDITOR}"
    writable = ", ".join(t for t in tables if t != "audit_events")
    sql = [
        f"REVOKE ALL ON {', '.join(tables)} FROM {groups}",  # idempotent: what an earlier run granted goes first
        "REVOKE CREATE ON SCHEMA public FROM PUBLIC",  # nobody may shadow a table or function (PostgreSQL < 15)
        "DO $$ BEGIN EXECUTE format('REVOKE TEMP ON DATABASE %I FROM PUBLIC', current_database()); END $$",
        f"GRANT USAGE ON SCHEMA public TO {groups}",
        f"GRANT SELECT ON {', '.join(tables)} TO {groups}",
        f"GRANT INSERT, UPDATE ON {writable} TO {WORKER}, {REVIEWER}",
        f"GRANT INSERT ON audit_events TO {WORKER}, {REVIEWER}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {WORKER}, {REVIEWER}",
    ]
    for group, names in _DELETES.items():
        present = [t for t in names if t in tables]
        if present:
            sql.append(f"GRANT DELETE ON {', '.join(present)} TO {group}")
    return sql
