import pytest


@pytest.fixture(scope="session")
def hf_reference(tmp_path_factory):
    """The HF reference runs (tests/integrations/hf_reference.py), each scenario run once per session and
    shared by the integration and harness tests."""
    from tests.integrations.hf_reference import ReferenceRuns

    return ReferenceRuns(tmp_path_factory.mktemp("hf-reference"))
