"""Settings errors name where the bad value came from (file or SCREENER_* variable), and every command refuses
a `[chains.<name>]` table that does not resolve to a chain (e.g. a typo), not only `run` and `addresses`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from screener.daemon.worker import check_config
from screener.settings import load_settings
from screener_base.errors import ConfigError
from tests.support import cli_fork

SCREENER = Path(sys.executable).with_name("screener")


@pytest.fixture(autouse=True)
def _no_screener_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.upper().startswith("SCREENER_"):
            monkeypatch.delenv(name)


def _config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "screener.toml"
    path.write_text(f'[database]\nurl = "sqlite:///{tmp_path / "s.db"}"\n' + text)
    return path


def test_a_bad_environment_value_is_blamed_on_its_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path, "[review]\nsla_h = 5\n")
    monkeypatch.setenv("SCREENER_REVIEW__SLA_H", "abc")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith("invalid configuration in the environment: SCREENER_REVIEW__SLA_H (review.sla_h): ")
    assert str(path) not in message


def test_a_bad_file_value_is_blamed_on_the_file(tmp_path: Path) -> None:
    path = _config(tmp_path, '[review]\nsla_h = "soon"\n')
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"invalid configuration in {path}: review.sla_h: ")
    assert "SCREENER_" not in str(info.value)


def test_bad_values_from_both_name_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = _config(tmp_path, '[review]\nsla_h = "soon"\n')
    monkeypatch.setenv("screener_daemon__jitter_s", "-1")  # names are case-insensitive
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert message.startswith(f"invalid configuration in {path} and the environment: ")
    assert "review.sla_h: " in message and "screener_daemon__jitter_s (daemon.jitter_s): " in message


def test_an_unparsable_environment_list_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SCREENER_CHAINS__ETHEREUM__RPC_URLS", "https://not-json.example")
    with pytest.raises(ConfigError, match="SCREENER_CHAINS__ETHEREUM__RPC_URLS cannot be parsed"):
        load_settings(_config(tmp_path, ""))


def test_the_daemon_check_refuses_a_chain_table_that_is_not_a_chain(tmp_path: Path) -> None:
    # No rpc_urls: nothing would poll it, so only the check itself can notice the typo.
    settings = load_settings(_config(tmp_path, "[chains.etherum]\nstart_block = 5\n"))
    with pytest.raises(ConfigError, match=r"\[chains\.etherum\].*did you mean \[chains\.ethereum\]"):
        check_config(settings)
    disabled = load_settings(
        _config(tmp_path, '[chains.etherum]\nenabled = false\n[chains.ethereum]\nrpc_urls = ["http://127.0.0.1:9"]\n')
    )
    assert check_config(disabled) == ["ethereum"]


@pytest.mark.parametrize(
    "args", [("status",), ("status", "--json"), ("addresses", "list"), ("holds", "list"), ("lists", "status")]
)
def test_every_command_refuses_a_typo_chain_table_in_one_line(tmp_path: Path, args: tuple[str, ...]) -> None:
    path = _config(tmp_path, '[chains.etherum]\nrpc_urls = ["https://mainnet.example/v3/KEY"]\n')
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("SCREENER_")}
    res = cli_fork.run(
        [str(SCREENER), "--config", str(path), *args], capture_output=True, text=True, env=env, timeout=120
    )
    assert res.returncode == 2 and res.stdout == "", res
    lines = res.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: [chains.etherum] in the configuration: "), res.stderr
    assert "did you mean [chains.ethereum]" in lines[0] and "KEY" not in lines[0]
    assert not (tmp_path / "s.db").exists()  # refused before anything was opened
