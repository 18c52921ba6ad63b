import os
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import inspect

from assistant import create_app, db
from assistant.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_config(tmp_path):
    url = f"sqlite:///{tmp_path / 'a.sqlite'}"
    assert not create_app({"DATABASE_URL": url}).testing
    assert create_app({"DATABASE_URL": url, "TESTING": True}).testing


def test_defaults():
    app = create_app()
    assert os.path.isdir(app.instance_path)
    assert app.config["DATABASE_URL"] == "sqlite:///" + os.path.join(app.instance_path, "assistant.sqlite")
    assert app.config["API_TOKENS"] == []
    assert app.config["MAX_CONTENT_LENGTH"] == 10 * 1024 * 1024


def test_environment_then_mapping(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSISTANT_DATABASE_URL", f"sqlite:///{tmp_path / 'env.sqlite'}")
    monkeypatch.setenv("ASSISTANT_MAX_CONTENT_LENGTH", "1234")
    monkeypatch.setenv("ASSISTANT_API_TOKENS", " alpha, 123 ,,")
    app = create_app()
    assert app.config["MAX_CONTENT_LENGTH"] == 1234
    assert app.config["API_TOKENS"] == ["alpha", "123"]
    assert app.config["DATABASE_URL"].endswith("env.sqlite")

    app = create_app({"MAX_CONTENT_LENGTH": 99, "API_TOKENS": ["beta"]})
    assert app.config["MAX_CONTENT_LENGTH"] == 99
    assert app.config["API_TOKENS"] == ["beta"]


def test_single_numeric_token_from_environment_stays_a_string(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSISTANT_API_TOKENS", "12345")
    assert create_app({"DATABASE_URL": f"sqlite:///{tmp_path / 'a.sqlite'}"}).config["API_TOKENS"] == ["12345"]


def test_tables_created_on_startup(app):
    with app.app_context():
        assert {"conversations", "turns", "feedback"} <= set(inspect(db.get_engine()).get_table_names())


def test_init_db_command(runner):
    result = runner.invoke(args=["init-db"])
    assert result.exit_code == 0, result.output
    assert f"to revision {db.SCHEMA_REVISION} (head)" in result.output


def test_assistant_command_init_db(monkeypatch, tmp_path):
    monkeypatch.setenv("ASSISTANT_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite'}")
    result = CliRunner().invoke(main, ["init-db"])
    assert result.exit_code == 0, result.output
    assert "cli.sqlite" in result.output
    assert (tmp_path / "cli.sqlite").exists()


def test_assistant_command_lists_serve():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    assert "serve" in result.output and "init-db" in result.output


def test_web_tier_never_imports_the_ml_stack(tmp_path):
    """TensorFlow never; pandas and NumPy only for a data sample, which this conversation does not send."""
    script = textwrap.dedent(f"""
        import sys
        from assistant import create_app
        app = create_app({{"DATABASE_URL": "sqlite:///{tmp_path / 'tf.sqlite'}"}})
        client = app.test_client()
        started = client.post("/api/v1/conversations", json={{
            "symptom": "loss is nan after a few epochs",
            "metrics": {{"loss": [0.7, 3.5, float("nan")], "val_loss": [0.7, 4.0, float("nan")]}},
            "training": {{"optimizer": "sgd", "learning_rate": 5.0}}}})
        assert started.status_code == 201, started.get_data(as_text=True)
        turn = client.post(f"/api/v1/conversations/{{started.json['id']}}/turns",
                           json={{"text": "I don't know", "metrics": "epoch,loss\\n0,0.7\\n1,nan\\n"}})
        assert turn.status_code == 200, turn.get_data(as_text=True)
        assert client.get(f"/api/v1/conversations/{{started.json['id']}}").status_code == 200
        assert client.get("/").status_code == 200
        loaded = sorted({{name.split(".")[0] for name in sys.modules}} & {{"tensorflow", "keras", "pandas", "numpy", "sklearn"}})
        assert not loaded, f"the web tier imported {{loaded}}"
    """)
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=120)
