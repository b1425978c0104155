"""Accounts and inspection records are app-made data: a rebuild from source keeps them."""

from geoapp.storage import open_repository


def test_forced_rebuild_keeps_accounts_login_attempts_and_inspections(tiny_data_dir, tmp_path):
    repo = open_repository({"DATABASE": str(tmp_path / "db.gpkg")})
    repo.initialize(tiny_data_dir)
    repo.create_user("alice", "pbkdf2:sha256$x", "admin", user="test")
    repo.record_login("alice", "127.0.0.1", False)
    repo.add_inspection({"lon": 113.3, "lat": 35.2, "verdict": "pass", "hits": []}, user="alice")
    report = repo.initialize(tiny_data_dir, force=True)
    assert report["kept"] == {"users": 1, "api_tokens": 0, "login_attempts": 1,
                              "inspections": 1, "inspection_photos": 0,
                              "unit_requirements": 0, "emergency_measures": 0}
    assert [u["username"] for u in repo.list_users()] == ["alice"]
    assert repo.failed_logins_since("2000-01-01", username="alice") == 1
    assert repo.inspections()[0]["inspector"] == "alice"


def test_password_hashes_never_reach_the_audit_log_or_listings(repo):
    repo.create_user("bob", "pbkdf2:sha256$secret-hash", "viewer", user="test")
    repo.update_user("bob", {"password_hash": "pbkdf2:sha256$other-hash"}, user="test")
    assert "password_hash" not in repo.list_users()[0]
    log = repo.table("changes").to_string()
    assert "secret-hash" not in log and "other-hash" not in log
