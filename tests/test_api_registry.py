def test_openapi(client, db):
    client.get("/api/v1/openapi.json")
