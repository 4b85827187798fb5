"""Mail settings from the environment: defaults for the local sink, clear errors otherwise."""

from __future__ import annotations

import pytest

from exops.mail import MailConfigError, mail_settings


def test_local_defaults_send_unset_audiences_to_the_sink():
    s = mail_settings({})
    assert (s.host, s.port, s.starttls, s.local) == ("127.0.0.1", 8025, False, True)
    assert s.recipients(["ops", "risk"]) == ["ops@exops.local", "risk@exops.local"]


def test_configured_server_and_audiences():
    s = mail_settings(
        {
            "EXOPS_SMTP_HOST": "smtp.example.com",
            "EXOPS_SMTP_USER": "u",
            "EXOPS_SMTP_PASSWORD": "s3cret-pw",
            "EXOPS_MAIL_FROM": "exops@example.com",
            "EXOPS_MAIL_TO_OPS": "a@example.com, b@example.com",
            "EXOPS_MAIL_TO_RISK": "b@example.com,c@example.com",
        }
    )
    assert (s.port, s.starttls, s.local) == (587, True, False)
    assert s.recipients(["ops", "risk"]) == ["a@example.com", "b@example.com", "c@example.com"]
    assert "s3cret-pw" not in repr(s)


def test_smtp_password_from_a_file(tmp_path):
    secret_file = tmp_path / "smtp_password"
    secret_file.write_text("from-a-docker-secret\n")
    env = {"EXOPS_SMTP_HOST": "smtp.example.com", "EXOPS_SMTP_USER": "u"}
    s = mail_settings(env | {"EXOPS_SMTP_PASSWORD_FILE": str(secret_file)})
    assert s.password == "from-a-docker-secret"
    with pytest.raises(MailConfigError, match="EXOPS_SMTP_PASSWORD_FILE=.*cannot read it"):
        mail_settings(env | {"EXOPS_SMTP_PASSWORD_FILE": str(tmp_path / "missing")})


def test_configured_server_needs_every_audience_it_mails():
    s = mail_settings({"EXOPS_SMTP_HOST": "smtp.example.com"})
    with pytest.raises(MailConfigError) as info:
        s.recipients(["data_eng"])
    assert str(info.value) == (
        "EXOPS_MAIL_TO_DATA_ENG is not set: give the comma-separated addresses of audience "
        "'data_eng'"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"EXOPS_SMTP_PORT": "smtp"},
            "EXOPS_SMTP_PORT: must be a port number 1-65535, got 'smtp'",
        ),
        (
            {"EXOPS_SMTP_PORT": "70000"},
            "EXOPS_SMTP_PORT: must be a port number 1-65535, got '70000'",
        ),
        (
            {"EXOPS_SMTP_STARTTLS": "maybe"},
            "EXOPS_SMTP_STARTTLS: must be true or false, got 'maybe'",
        ),
        (
            {"EXOPS_SMTP_USER": "u"},
            "EXOPS_SMTP_USER and EXOPS_SMTP_PASSWORD go together: set both or neither",
        ),
        ({"EXOPS_MAIL_FROM": "exops"}, "EXOPS_MAIL_FROM: 'exops' is not an email address"),
        (
            {"EXOPS_MAIL_TO_OPS": "a@example.com, not-an-address"},
            "EXOPS_MAIL_TO_OPS: 'not-an-address' is not an email address",
        ),
        (
            {"EXOPS_MAIL_TO_OPS": " , "},
            "EXOPS_MAIL_TO_OPS is set but holds no address; give a@x.com,b@y.com",
        ),
    ],
)
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(MailConfigError) as info:
        mail_settings(env)
    assert str(info.value) == message
