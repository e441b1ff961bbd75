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

# Balances follow transfers: a balance change is only accepted, at commit, when it equals what the transfers
# inserted in the same transaction add up to. The start of each touched account and the transfers' sum are
# kept per transaction in a table only these functions (the owner's) write; a member cannot forge either.
_BALANCE_MARKS = """
CREATE TABLE IF NOT EXISTS public.screener_balance_marks (
  account_id integer NOT NULL, xact xid8 NOT NULL,
  start_dp numeric NOT NULL, start_dpe numeric NOT NULL, start_cp numeric NOT NULL, start_cpe numeric NOT NULL,
  exp_dp numeric NOT NULL DEFAULT 0, exp_dpe numeric NOT NULL DEFAULT 0,
  exp_cp numeric NOT NULL DEFAULT 0, exp_cpe numeric NOT NULL DEFAULT 0,
  PRIMARY KEY (account_id, xact))
"""

_DEFINER_HEAD = _FN_HEAD.replace("LANGUAGE plpgsql", "LANGUAGE plpgsql SECURITY DEFINER")

_ACCOUNTS_GUARD = f"""
CREATE OR REPLACE FUNCTION public.screener_guard_accounts() {_DEFINER_HEAD}
BEGIN
  IF TG_OP = 'INSERT' THEN
    IF NEW.debits_posted <> 0 OR NEW.debits_pending <> 0 OR NEW.credits_posted <> 0 OR NEW.credits_pending <> 0 THEN
      RAISE EXCEPTION 'ledger account % % must be opened with zero balances', NEW.name, NEW.asset {_REFUSE};
    END IF;
    RETURN NEW;
  END IF;
  IF (NEW.id, NEW.name, NEW.asset, NEW.normal) IS DISTINCT FROM (OLD.id, OLD.name, OLD.asset, OLD.normal) THEN
    RAISE EXCEPTION 'ledger account % %: its name, asset and side never change', OLD.name, OLD.asset {_REFUSE};
  END IF;
  INSERT INTO public.screener_balance_marks (account_id, xact, start_dp, start_dpe, start_cp, start_cpe)
  VALUES (OLD.id, pg_current_xact_id(), OLD.debits_posted, OLD.debits_pending, OLD.credits_posted,
          OLD.credits_pending)
  ON CONFLICT DO NOTHING;
  RETURN NEW;
END
$fn$
"""

_EXPECT = """
CREATE OR REPLACE FUNCTION public.screener_expect(acc integer, dp numeric, dpe numeric, cp numeric, cpe numeric)
RETURNS void LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $fn$
BEGIN
  INSERT INTO public.screener_balance_marks (account_id, xact, start_dp, start_dpe, start_cp, start_cpe)
  SELECT id, pg_current_xact_id(), debits_posted, debits_pending, credits_posted, credits_pending
    FROM public.ledger_accounts WHERE id = acc
  ON CONFLICT DO NOTHING;
  UPDATE public.screener_balance_marks
     SET exp_dp = exp_dp + dp, exp_dpe = exp_dpe + dpe, exp_cp = exp_cp + cp, exp_cpe = exp_cpe + cpe
   WHERE account_id = acc AND xact = pg_current_xact_id();
END
$fn$
"""

# What a transfer adds to its two accounts (screener.ledger.rules.apply, in SQL).
_TRANSFER_EXPECTS = f"""
CREATE OR REPLACE FUNCTION public.screener_expect_transfer() {_DEFINER_HEAD}
DECLARE
  a numeric := NEW.amount;
BEGIN
  IF NEW.flags = 'posted' THEN
    PERFORM public.screener_expect(NEW.debit_account_id, a, 0, 0, 0);
    PERFORM public.screener_expect(NEW.credit_account_id, 0, 0, a, 0);
  ELSIF NEW.flags = 'pending' THEN
    PERFORM public.screener_expect(NEW.debit_account_id, 0, a, 0, 0);
    PERFORM public.screener_expect(NEW.credit_account_id, 0, 0, 0, a);
  ELSIF NEW.flags = 'post_pending' THEN
    PERFORM public.screener_expect(NEW.debit_account_id, a, -a, 0, 0);
    PERFORM public.screener_expect(NEW.credit_account_id, 0, 0, a, -a);
  ELSIF NEW.flags = 'void_pending' THEN
    PERFORM public.screener_expect(NEW.debit_account_id, 0, -a, 0, 0);
    PERFORM public.screener_expect(NEW.credit_account_id, 0, 0, 0, -a);
  ELSE
    RAISE EXCEPTION 'ledger transfer % has unknown flags %', NEW.id, NEW.flags {_REFUSE};
  END IF;
  RETURN NULL;
END
$fn$
"""

_BALANCE_CHECK = f"""
CREATE OR REPLACE FUNCTION public.screener_check_balances() {_DEFINER_HEAD}
DECLARE
  ids integer[];
  acc integer;
  m record;
  b record;
BEGIN
  IF TG_TABLE_NAME = 'ledger_accounts' THEN
    ids := ARRAY[NEW.id];
  ELSE
    ids := ARRAY[NEW.debit_account_id, NEW.credit_account_id];
  END IF;
  FOREACH acc IN ARRAY ids LOOP
    SELECT * INTO m FROM public.screener_balance_marks WHERE account_id = acc AND xact = pg_current_xact_id();
    CONTINUE WHEN NOT FOUND;  -- already checked at this commit
    SELECT name, asset, debits_posted, debits_pending, credits_posted, credits_pending INTO b
      FROM public.ledger_accounts WHERE id = acc;
    IF b.debits_posted - m.start_dp <> m.exp_dp OR b.debits_pending - m.start_dpe <> m.exp_dpe
       OR b.credits_posted - m.start_cp <> m.exp_cp OR b.credits_pending - m.start_cpe <> m.exp_cpe THEN
      RAISE EXCEPTION 'ledger account % %: its balances changed by other than the transfers of this transaction',
        b.name, b.asset {_REFUSE};
    END IF;
    DELETE FROM public.screener_balance_marks WHERE account_id = acc AND xact = pg_current_xact_id();
  END LOOP;
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
    "DROP TRIGGER IF EXISTS screener_guard_accounts ON ledger_accounts",
    "CREATE TRIGGER screener_guard_accounts BEFORE INSERT OR UPDATE ON ledger_accounts FOR EACH ROW "
    "EXECUTE FUNCTION public.screener_guard_accounts()",
    "DROP TRIGGER IF EXISTS screener_expect_transfer ON ledger_transfers",
    "CREATE TRIGGER screener_expect_transfer AFTER INSERT ON ledger_transfers FOR EACH ROW "
    "EXECUTE FUNCTION public.screener_expect_transfer()",
    "DROP TRIGGER IF EXISTS screener_check_balances ON ledger_accounts",
    "CREATE CONSTRAINT TRIGGER screener_check_balances AFTER UPDATE ON ledger_accounts "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.screener_check_balances()",
    "DROP TRIGGER IF EXISTS screener_check_transfer_balances ON ledger_transfers",
    "CREATE CONSTRAINT TRIGGER screener_check_transfer_balances AFTER INSERT ON ledger_transfers "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION public.screener_check_balances()",
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
    tables = [t for t in tables if not t.startswith("screener_")]  # the guards' own tables: nobody's to touch
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
        _BALANCE_MARKS.strip(),
        "REVOKE ALL ON public.screener_balance_marks FROM PUBLIC",
        _ACCOUNTS_GUARD.strip(),
        _EXPECT.strip(),
        _TRANSFER_EXPECTS.strip(),
        _BALANCE_CHECK.strip(),
        "REVOKE EXECUTE ON FUNCTION public.screener_expect(integer, numeric, numeric, numeric, numeric) FROM PUBLIC",
        *_TRIGGERS,
    ]


# Rows a role may delete: the worker rewinds kept headers and unscreened deposits of replaced blocks; staff remove
# deposit addresses. Nothing else is ever deleted, and audit events are only ever added.
_DELETES = {WORKER: ("chain_headers", "deposits", "deposit_addresses"), REVIEWER: ("deposit_addresses",)}


_CHAIN_TABLES = (
    "index_cursors", "mixer_withdrawals", "issuer_blacklist_events", "scan_cursors", "chain_headers",
)  # fmt: skip


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
        f"REVOKE UPDATE ON ledger_transfers FROM {groups}",  # a transfer is immutable once written
        # What the chain and the indexes say is the worker's to write: a reviewer moving an index cursor forward
        # would make screening trust blocks nobody scanned.
        f"REVOKE INSERT, UPDATE ON {', '.join(t for t in _CHAIN_TABLES if t in tables)} FROM {REVIEWER}",
        f"GRANT INSERT ON audit_events TO {WORKER}, {REVIEWER}",
        f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {WORKER}, {REVIEWER}",
    ]
    for group, names in _DELETES.items():
        present = [t for t in names if t in tables]
        if present:
            sql.append(f"GRANT DELETE ON {', '.join(present)} TO {group}")
    return sql
