"""The container file and the compose file, checked without Docker (which cannot run here): they
parse, every command is a real entry point, every setting is one the app reads, every copied path
exists, and deploy/README.md documents every setting."""
from __future__ import annotations

import importlib.util
import re
import shlex
import tomllib
from pathlib import Path

import pytest
import yaml
from dockerfile_parse import DockerfileParser
from flask import Flask

from assistant import create_app
from assistant.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
INSTRUCTIONS = {"FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
                "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL"}
#: Settings that gunicorn's settings module reads, not the app.
PROCESS_VARIABLES = {"ASSISTANT_BIND", "ASSISTANT_WORKERS", "ASSISTANT_THREADS", "ASSISTANT_LOG_LEVEL"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> list[dict]:
    steps = DockerfileParser(path=str(DEPLOY / "Dockerfile")).structure
    return [step for step in steps if step["instruction"] != "COMMENT"]


@pytest.fixture(scope="module")
def extras() -> set[str]:
    return set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])


def app_settings() -> set[str]:
    """The settings the app reads beyond Flask's own, as ``ASSISTANT_`` variables."""
    app = create_app({"DATABASE_URL": "sqlite://"})
    return {f"ASSISTANT_{key}" for key in set(app.config) - set(Flask.default_config)} | {
        "ASSISTANT_MAX_CONTENT_LENGTH", "ASSISTANT_MAX_FORM_MEMORY_SIZE"}


def test_the_dockerfile_has_only_known_instructions_and_starts_from_an_image(dockerfile):
    assert dockerfile[0]["instruction"] == "FROM"
    assert {step["instruction"] for step in dockerfile} <= INSTRUCTIONS


def test_the_dockerfile_copies_what_exists_and_the_dockerignore_lets_through(dockerfile):
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    for step in dockerfile:
        if step["instruction"] == "COPY":
            *sources, _ = shlex.split(step["value"])
            for source in sources:
                assert (ROOT / source).exists(), source
                assert source.rstrip("/") in allowed, f"{source} is left out of the build context"


def test_the_images_extras_and_command_exist(dockerfile, compose, extras):
    arguments = {step["value"].split("=")[0]: step["value"].split("=", 1)[1]
                 for step in dockerfile if step["instruction"] == "ARG"}
    builds = [service["build"] for service in compose["services"].values() if "build" in service]
    for chosen in [arguments["EXTRAS"], *(build["args"]["EXTRAS"] for build in builds)]:
        assert set(chosen.split(",")) <= extras, chosen
    (command,) = [step["value"] for step in dockerfile if step["instruction"] == "CMD"]
    assert_entry_point(yaml.safe_load(command))  # exec form is a JSON list


def assert_entry_point(command: list[str]) -> None:
    """The command is ``assistant <a real subcommand>`` or a Celery worker of a real Celery app."""
    if command[0] == "assistant":
        assert command[1] in main.commands, command
    else:
        assert command[:2] == ["celery", "-A"] and command[3] == "worker", command
        assert importlib.util.find_spec(command[2]) is not None, command


def test_compose_has_the_scale_out_services(compose):
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "web", "worker", "proxy"}
    for name in ("migrate", "web", "worker"):
        assert_entry_point(services[name]["command"])
        build = services[name]["build"]
        assert (DEPLOY / build["context"] / build["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
        for dependency, condition in services[name]["depends_on"].items():
            assert dependency in services and condition["condition"] in (
                "service_healthy", "service_completed_successfully")
    assert services["migrate"]["command"][1] == "init-db"  # the schema comes from a command, once
    assert services["web"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert "ml" not in services["web"]["build"]["args"]["EXTRAS"].split(",")  # no TensorFlow on web machines


def test_nginx_in_front_buffers_for_the_web_machines_and_they_trust_it(compose):
    proxy, web = compose["services"]["proxy"], compose["services"]["web"]
    mount, target, _ = proxy["volumes"][0].split(":")
    assert (DEPLOY / mount).resolve() == DEPLOY / "nginx.conf" and target == "/etc/nginx/nginx.conf"
    assert proxy["depends_on"] == {"web": {"condition": "service_healthy"}}
    assert "ports" not in web and web["environment"]["ASSISTANT_TRUSTED_PROXIES"] == "1"
    settings = dict(re.findall(r"^\s*([a-z_]+)\s+([^;{]+);", (DEPLOY / "nginx.conf").read_text(), re.MULTILINE))
    from assistant import create_app

    limit = create_app({"TESTING": True, "DATABASE_URL": "sqlite://"}).config["MAX_CONTENT_LENGTH"]
    assert settings["client_max_body_size"] == f"{limit // 2**20}m"  # nginx refuses what the app would
    assert settings["proxy_request_buffering"] == settings["proxy_buffering"] == "on"
    assert settings["client_header_timeout"] == "10s" and settings["proxy_pass"] == "http://web"


def test_every_compose_setting_is_one_the_app_or_gunicorn_reads(compose):
    known = app_settings() | PROCESS_VARIABLES | {"SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"}
    for name in ("migrate", "web", "worker"):
        assert set(compose["services"][name]["environment"]) <= known, name


def test_the_shared_settings_point_every_machine_at_the_same_services(compose):
    web, worker = (compose["services"][name]["environment"] for name in ("web", "worker"))
    for key in ("ASSISTANT_DATABASE_URL", "ASSISTANT_CELERY_BROKER_URL", "ASSISTANT_RATELIMIT_STORAGE_URI"):
        assert web[key] == worker[key]
    assert web["ASSISTANT_REPRO_BACKEND"] == "celery"
    assert web["ASSISTANT_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert web["ASSISTANT_RATELIMIT_STORAGE_URI"].startswith("redis://")


def test_the_deploy_readme_documents_every_setting():
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", (DEPLOY / "README.md").read_text()))
    for variable in app_settings() | PROCESS_VARIABLES:
        assert variable.removeprefix("ASSISTANT_") in documented or variable in documented, variable
