"""The client shim picks the library the environment has; CI runs these tests twice, once
with ib_async (the project's environment) and once with ib_insync only (QM_EXPECT_IB_CLIENT
names the library that environment must have used)."""

import os

from qm_pipeline.lib.ib import client


def test_the_expected_client_library_is_in_use():
    expected = os.environ.get("QM_EXPECT_IB_CLIENT", "ib_async")
    assert expected == client.LIBRARY
    assert client.LOGGER_NAMES[0] == f"{expected}.Decoder"
    assert (178 if expected == "ib_async" else 176) == client.MAX_SERVER_VERSION
