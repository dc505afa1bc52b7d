import pytest
from certnet.core.roles import Role

@pytest.fixture(autouse=True)
def _fast(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

@pytest.mark.parametrize("path", ["/organisations", "/netblocks", "/asns", "/domains", "/organisations/ncert", "/me", "/lookup?ip=1.2.3.4"])
def test_probe(framework, make_user, api_as, path):
    u = make_user(framework["ncert"], Role.MANAGER)
    c = api_as(u)
    c.client.raise_request_exception = False
    r = c.get(path)
    print(path, r.status_code, r.content[:300])
