"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

from hypothesis import strategies as st

from scaler.trigger import known_keys

_VALUES = st.one_of(
    st.text(max_size=20),
    st.sampled_from(
        ["0", "1", "-1", "2.5", "1e309", "nan", "inf", "true", "false", "15s", "1m", "0s", "500"]
    ),
    st.sampled_from(
        ["http://prometheus.test:9090", "reactive", "predictive", "replay", "prometheus", "a=b,c=d"]
    ),
)
_KEYS = st.one_of(
    st.sampled_from(known_keys()),
    st.sampled_from([k + "FromEnv" for k in known_keys()]),
    st.sampled_from(["scalerAddress", "enableTLS"]),
    st.text(min_size=1, max_size=12),
)


def metadata_maps() -> st.SearchStrategy[dict[str, str]]:
    """Trigger metadata maps, mostly plausible keys with wild values, sometimes valid."""
    valid_base = st.fixed_dictionaries(
        {
            "serverAddress": st.just("http://prometheus.test:9090"),
            "query": st.just("up"),
            "threshold": st.just("5"),
        }
    )
    noise = st.dictionaries(_KEYS, _VALUES, max_size=6)
    return st.one_of(noise, st.builds(lambda base, extra: {**base, **extra}, valid_base, noise))
