"""Settings: a TOML file plus SCREENER_* environment overrides, validated with clear errors.

Precedence (highest first): explicit overrides passed by code, SCREENER_* environment variables
(nested keys joined by ``__``, e.g. ``SCREENER_DATABASE__URL``), the TOML file, the defaults below.
The file is ``--config``, else ``$SCREENER_CONFIG``, else ``./screener.toml`` when it exists; with none,
the embedded defaults run (SQLite file, bundled sanctions snapshot, local devnet).
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from screener_base.errors import ConfigError

DEFAULT_CONFIG_PATH = Path("screener.toml")
OFAC_SDN_ADVANCED_URL = "https://sanctionslistservice.ofac.treas.gov/api/PublicationPreview/exports/SDN_ADVANCED.XML"


class _Section(BaseModel):
    # A typo in a key must be an error, not a silently ignored setting.
    model_config = ConfigDict(extra="forbid")


class DatabaseSettings(_Section):
    url: str = "sqlite:///screener.db"
    pool_timeout_s: float = Field(default=10.0, gt=0, le=300)
    statement_timeout_s: float = Field(default=30.0, gt=0, le=3600)

    @field_validator("url")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if not value.startswith(("sqlite://", "postgresql://", "postgresql+psycopg://")):
            raise ValueError("must start with sqlite:// or postgresql:// (e.g. postgresql://user@host/db)")
        from sqlalchemy.engine import make_url  # lazy: loading settings must not pull in SQLAlchemy

        try:
            make_url(value)  # e.g. a bad port or an unclosed [ipv6 bracket
        except Exception as exc:  # sqlalchemy raises ValueError/ArgumentError; any of them means "malformed"
            raise ValueError(f"is not a valid database URL ({exc})") from None
        return value


class ReviewSettings(_Section):
    sla_h: float = Field(default=24.0, gt=0, le=24 * 30)
    # Whole tokens (not base units) so one threshold fits 6- and 18-decimal tokens alike.
    four_eyes_above_units: int = Field(default=10_000, ge=0)
    # A hold that was only "screening unavailable" (stale list, lagging index) and screens clean once the data
    # is there is credited by the system, as the pipeline would have; false leaves it for a person.
    credit_after_rescreen: bool = True
    # Who is acting: the database login (PostgreSQL), the OS account (SQLite), or, only when set explicitly,
    # the name given with --operator / SCREENER_OPERATOR ("declared": the demo and tests). None: by the store.
    identity: Literal["database", "os", "declared"] | None = None
    # "ssh": release, approve, reject and flag resolution are signed by the reviewer's own key with
    # `ssh-keygen -Y sign -n screener-review`, checked against allowed_signers_path (docs/security.md).
    signing: Literal["off", "ssh"] = "off"
    allowed_signers_path: str | None = None
    # The acting reviewer's key: a private key file, or a public key whose private half is in ssh-agent.
    # Unset: ~/.ssh/id_ed25519 of the OS account. A person's own setting (SCREENER_REVIEW__SIGNING_KEY_PATH).
    signing_key_path: str | None = None


class ListSettings(_Section):
    source_url: str = OFAC_SDN_ADVANCED_URL
    refresh_cron: str = "17 */6 * * *"
    # Up to 10 years so the offline demo can explicitly accept the bundled snapshot's age.
    max_list_age_h: float = Field(default=72.0, gt=0, le=24 * 3650)
    # A new list may remove at most this fraction of the active version's EVM addresses, of its Tron
    # addresses, and of its entries in total (each measured separately)...
    max_drop_fraction: float = Field(default=0.2, ge=0, le=1)
    # ...except that removing at most this many from one of them never counts (one real delisting from a
    # small family is not refused).
    drop_floor_entries: int = Field(default=2, ge=0, le=1_000_000)
    download_timeout_s: float = Field(default=60.0, gt=0, le=600)
    max_download_bytes: int = Field(default=300 * 1024 * 1024, gt=0)
    max_attempts: int = Field(default=4, ge=1, le=20)
    # First wait between download attempts; doubles each retry, capped at 30x.
    retry_wait_s: float = Field(default=2.0, ge=0, le=300)
    rescreen_lookback_days: int = Field(default=180, ge=0, le=3650)


class ScreeningSettings(_Section):
    allowlist: list[str] = Field(default_factory=list)
    mixer_lookback_days: int = Field(default=180, ge=0, le=3650)
    blacklist_lookback_days: int = Field(default=180, ge=0, le=3650)
    two_hop_enabled: bool = False
    two_hop_min_units: int = Field(default=10_000, ge=0)
    two_hop_rpc_budget: int = Field(default=20, ge=1, le=1000)
    # How far back the sender's own USDT/USDC funding is searched for two-hop exposure.
    two_hop_lookback_days: int = Field(default=3, ge=0, le=365)
    # Direct deposits from a non-sanctioned privacy protocol (e.g. Railgun): hold, or only note it.
    privacy_protocols_hold: bool = False
    # Block ranges one mixer/blacklist index scan may fetch per chain before it yields (bounded loop).
    index_max_ranges_per_scan: int = Field(default=50, ge=1, le=100_000)


class RpcEndpointSettings(_Section):
    """One endpoint with its provider's request budget (TronGrid's free key: 100,000 requests a day)."""

    url: str = Field(min_length=1)
    # Lower bounds: below 0.5/s one request would wait longer than a retry may; below 100 a day a poll could not
    # run (a tick needs up to 6 requests in a row, and the day's bucket holds at least 32 of them).
    requests_per_s: float | None = Field(default=None, ge=0.5, le=100_000)
    requests_per_day: int | None = Field(default=None, ge=100, le=10**12)


class ChainSettings(_Section):
    """Per-chain overrides; anything unset falls back to the registry default for that chain."""

    enabled: bool = True
    # Each item a URL, or {url = "...", requests_per_s = 15, requests_per_day = 100000} for a budgeted endpoint.
    rpc_urls: list[str | RpcEndpointSettings] = Field(default_factory=list)
    chain_id: int | None = Field(default=None, gt=0)
    confirmations: int | None = Field(default=None, ge=0, le=10_000)
    finality_tag: Literal["finalized", "safe", "latest"] | None = None
    poll_interval_s: float | None = Field(default=None, gt=0, le=3600)
    max_block_range: int | None = Field(default=None, ge=1, le=1_000_000)
    start_block: int | None = Field(default=None, ge=0)
    request_timeout_s: float | None = Field(default=None, gt=0, le=300)
    # symbol -> contract address; replaces the registry's contract for that symbol on this chain.
    tokens: dict[str, str] = Field(default_factory=dict)
    # Needed only for chains not in the registry (or to scan an EVM devnet through the Tron codec).
    family: Literal["evm", "tron"] | None = None
    block_time_s: float | None = Field(default=None, gt=0, le=3600)
    # Up to this many deposit addresses are sent as the eth_getLogs `to` filter; above it, filter locally.
    server_filter_max_addresses: int | None = Field(default=None, ge=0, le=10_000)
    # A confirmed reorg deeper than this halts the chain (alert) instead of rewinding.
    max_reorg_depth: int | None = Field(default=None, ge=1, le=100_000)
    # Tron: a java-tron solidity-node JSON-RPC endpoint; its head is final (else head - confirmations).
    finality_rpc_url: str | None = None
    # Extra mixer pool contracts (Tornado Withdrawal layout) on this chain, e.g. one deployed on a devnet.
    mixer_pools: list[str] = Field(default_factory=list)
    # token symbol -> the issuer's MultiSigWallet that owns it ('' removes the registry's): its proposals to
    # blacklist an address hold deposits from that address before the freeze lands.
    issuer_multisigs: dict[str, str] = Field(default_factory=dict)

    @property
    def endpoints(self) -> list[RpcEndpointSettings]:
        return [RpcEndpointSettings(url=u) if isinstance(u, str) else u for u in self.rpc_urls]


class DaemonSettings(_Section):
    worker_id: str | None = None
    lease_ttl_s: float = Field(default=30.0, gt=0, le=3600)
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9464, ge=0, le=65535)
    metrics_interval_s: float = Field(default=15.0, gt=0, le=3600)
    index_scan_interval_s: float = Field(default=60.0, gt=0, le=86400)
    sla_check_interval_s: float = Field(default=300.0, gt=0, le=86400)
    jitter_s: float = Field(default=1.0, ge=0, le=600)
    max_tick_s: float = Field(default=120.0, gt=0, le=3600)


class AlertSettings(_Section):
    webhook_urls: list[str] = Field(default_factory=list)
    slack_format: bool = False
    timeout_s: float = Field(default=5.0, gt=0, le=120)
    max_attempts: int = Field(default=8, ge=1, le=100)
    deliver_interval_s: float = Field(default=10.0, gt=0, le=3600)
    # A chain whose safe head has not moved for this long raises a "chain halted" alert.
    chain_halt_after_s: float = Field(default=900.0, gt=0, le=7 * 86400)


class AuditSettings(_Section):
    # The daemon keeps the chain's head outside the database (docs/security.md): every checkpoint_interval_s a
    # JSON line {seq, head_hash, at} is appended to checkpoint_path (unset: no file) and sent with the alerts.
    checkpoint_interval_s: float = Field(default=3600.0, gt=0, le=7 * 86400)
    checkpoint_path: str | None = None
    # The daemon's own SSH key to sign its checkpoints (namespace screener-checkpoint); unset: unsigned.
    checkpoint_key_path: str | None = None


class LoggingSettings(_Section):
    json_format: bool = False
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="SCREENER_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    review: ReviewSettings = Field(default_factory=ReviewSettings)
    lists: ListSettings = Field(default_factory=ListSettings)
    screening: ScreeningSettings = Field(default_factory=ScreeningSettings)
    chains: dict[str, ChainSettings] = Field(default_factory=dict)
    daemon: DaemonSettings = Field(default_factory=DaemonSettings)
    alerts: AlertSettings = Field(default_factory=AlertSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The TOML file arrives through init_settings (see load_settings) so env wins over file.
        return (env_settings, init_settings)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist", "pass an existing file with --config") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}", "fix the syntax") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"config file {path} is not UTF-8 text ({exc.reason} at byte {exc.start})", "save it as UTF-8"
        ) from exc
    except OSError as exc:
        raise ConfigError(f"config file {path} cannot be read: {exc}", "check its permissions") from exc


def _env_var_for(loc: tuple[int | str, ...]) -> str | None:
    """The SCREENER_* variable that set ``loc`` or a section above it (names are case-insensitive), if any."""
    names = {name.upper(): name for name in os.environ if name.upper().startswith("SCREENER_")}
    for depth in range(len(loc), 0, -1):
        found = names.get(("SCREENER_" + "__".join(str(p) for p in loc[:depth])).upper())
        if found is not None:
            return found
    return None


def _format_validation_error(exc: ValidationError, path: Path | None) -> str:
    """One line naming each bad key and where it came from: the file, or the SCREENER_* variable that won."""
    parts, sources = [], []
    for err in exc.errors():
        key = ".".join(str(p) for p in err["loc"]) or "(root)"
        env_var = _env_var_for(tuple(err["loc"]))
        if env_var is not None:
            parts.append(f"{env_var} ({key}): {err['msg']}")
            source = "the environment"
        else:
            parts.append(f"{key}: {err['msg']}")
            source = str(path) if path else "the settings given (no config file, no SCREENER_* variable)"
        if source not in sources:
            sources.append(source)
    return f"invalid configuration in {' and '.join(sources)}: " + "; ".join(parts)


def resolve_config_path(explicit: str | Path | None) -> Path | None:
    if explicit:
        return Path(explicit)
    env_path = os.environ.get("SCREENER_CONFIG")
    if env_path:
        return Path(env_path)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def load_settings(config_path: str | Path | None = None, **overrides: Any) -> Settings:
    """Load and validate settings; raise ConfigError naming the key and the problem."""
    path = resolve_config_path(config_path)
    data: dict[str, Any] = _read_toml(path) if path else {}
    data.update(overrides)
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc, path), "correct the key named above") from exc
    except SettingsError as exc:  # a SCREENER_* value for a list or table that is not JSON
        raise ConfigError(_format_settings_error(exc), 'give lists and tables as JSON, e.g. \'["a", "b"]\'') from exc


def _format_settings_error(exc: SettingsError) -> str:
    match = re.search(r'field "(\w+)"', str(exc))
    prefix = f"SCREENER_{match.group(1)}".upper() if match else "SCREENER_"
    names = sorted(n for n in os.environ if n.upper() == prefix or n.upper().startswith(prefix + "__"))
    return f"invalid configuration in the environment: {', '.join(names) or prefix + '*'} cannot be parsed ({exc})"
