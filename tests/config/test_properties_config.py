"""Properties of the configuration parser: any mapping is settings or a ConfigError, secret-free."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from o365collector.config.loader import SECRET_KEYS, parse_settings
from o365collector.errors import ConfigError

SECRET = "Zq9~prop.config.secret-4417"
FAST = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
)  # the secret only ever sits under a secret key (secret_entries): elsewhere it is no secret
# keys the parsers know (native, Devo and flat layouts), so examples reach deep rules
known_keys = st.sampled_from(
    [
        "tenants", "sinks", "collection", "state_dir", "observability", "type", "name",
        "tenant_id", "client_id", "streams", "path", "url", "host", "port", "endpoints",
        "globals", "inputs", "outputs", "office365_reporting_message", "credentials",
        "services", "start_time", "username", "id", "enabled", *sorted(SECRET_KEYS),
    ]
)  # fmt: skip
keys = known_keys | st.text(max_size=8)
secret_entries = st.dictionaries(st.sampled_from(sorted(SECRET_KEYS)), st.just(SECRET), max_size=2)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(keys, inner, max_size=4)
        | st.builds(
            lambda d, s: {**d, **s}, st.dictionaries(keys, inner, max_size=3), secret_entries
        )
    ),
    max_leaves=15,
)


def _tenant(extra: dict[str, Any], secrets: dict[str, Any]) -> dict[str, Any]:
    base = {
        "tenant_id": "contoso.onmicrosoft.com",
        "client_id": "c0ffee00-0000-0000-0000-000000000001",
    }
    return {**base, **extra, **secrets}


mappings = (
    st.dictionaries(keys, values, max_size=5)
    | st.builds(
        lambda tenant, secrets, sinks, rest: {
            "tenants": [_tenant(tenant, secrets)],
            "sinks": sinks,
            **rest,
        },
        st.dictionaries(keys, values, max_size=3),
        secret_entries,
        st.lists(st.dictionaries(keys, values, max_size=3) | secret_entries, max_size=2),
        st.dictionaries(keys, values, max_size=2),
    )
    | st.builds(
        lambda secrets, rest: {
            "inputs": {
                "office365_reporting_message": {
                    "credentials": {"username": "a@contoso.com", **secrets}
                }
            },
            **rest,
        },
        secret_entries,
        st.dictionaries(keys, values, max_size=3),
    )
)


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("config")


@FAST
@given(data=mappings | values)
# A Devo `outputs:` holding a secret where a mapping belongs showed it (the compat layer
# knew fewer secret keys than the native one): one list now, in observability.redact.
@example(data={"outputs": {"api_key": SECRET}})
@example(data={"outputs": {"token": SECRET}})
def test_any_input_is_settings_or_a_config_error_without_the_secret(
    data: Any, base_dir: Path
) -> None:
    try:
        parse_settings(data, base_dir=base_dir)
    except ConfigError as exc:
        message = str(exc)
        assert message
        assert SECRET not in message
        assert SECRET[4:20] not in message  # nor a cut of it


@FAST
@given(key=st.sampled_from(sorted(SECRET_KEYS)), as_list=st.booleans())
@example(key="account_password", as_list=False)
def test_a_secret_under_a_sink_type_is_not_quoted(key: str, as_list: bool, base_dir: Path) -> None:
    tag: Any = {key: SECRET}
    data = {
        "tenants": [_tenant({}, {"client_secret": "x" * 12})],
        "sinks": [{"type": [tag] if as_list else tag}],
    }
    with pytest.raises(ConfigError) as info:
        parse_settings(data, base_dir=base_dir)
    assert SECRET not in str(info.value)
