"""One-click decision links through the API: signed, expiring, single-use; GET changes nothing."""

from __future__ import annotations

import json

from tests.integration.test_quorum import board_spend, start

PREFIX = "/workflows"


def expense(api, name="link_expense", **quorum):
    definition = board_spend(name=name, **quorum) if quorum else board_spend(required=1, out_of=None, name=name)
    definition["steps"][0]["assignee"] = "bob"
    return start(api, definition)


def mint(api, task_id, **body):
    status, minted = api.post(f"/tasks/{task_id}/links", body)
    assert status == 201, minted
    return {d: url.removeprefix(PREFIX) for d, url in minted["links"].items()}, minted


def page(api, path, method="GET", body=None, content_type=None):
    headers = {"content-type": content_type} if content_type else {}
    response = api.client.http.request(method, PREFIX + path, headers=headers, body=body)
    return response.status_code, response.headers.get("Content-Type", ""), response.body.decode()


def task_of(api, task_id):
    return api.get(f"/tasks/{task_id}")[1]


def test_a_signed_link_approves_once_and_a_get_changes_nothing(api):
    instance_id, task = expense(api)
    links, minted = mint(api, task["id"])
    assert minted["decider"] == "bob" and minted["expires_at"]
    assert "token" not in json.dumps(minted) and all("/decide/" in url for url in minted["links"].values())

    # A link scanner fetching it: a confirmation page, nothing decided.
    for _ in range(2):
        status, kind, html = page(api, links["approve"])
        assert status == 200 and kind.startswith("text/html") and "Approve" in html and "as bob" in html
    assert task_of(api, task["id"])["status"] == "pending"

    status, decided = api.post(links["approve"], {"comment": "looks right"})
    assert status == 200, decided
    assert decided["decided_by"] == "bob" and decided["decision"] == "approve"
    assert decided["task"]["status"] == "completed" and decided["task"]["output_data"] == {"approved": True,
                                                                                          "comments": "looks right"}
    [made] = decided["task"]["decisions"]
    assert made["by"] == "bob" and made["via"] == "link"

    # Used: the same link, and its reject twin, say so and change nothing.
    status, again = api.post(links["approve"], {})
    assert status == 409 and "already used" in again["detail"]
    status, twin = api.post(links["reject"], {})
    assert status == 409 and "already used" in twin["detail"]
    status, kind, html = page(api, links["approve"])
    assert status == 409 and "already used" in html and "<form" not in html
    after = task_of(api, task["id"])
    assert after["output_data"]["approved"] is True and len(after["decisions"]) == 1
    assert api.wait(instance_id)["status"] == "completed"


def test_expired_and_tampered_links_change_nothing_and_say_why(api):
    import app as app_module
    from chalicelib.core.links import Link, sign

    _, task = expense(api, name="link_expired")
    links, _ = mint(api, task["id"])
    token = links["approve"].rsplit("/", 1)[1]
    payload, mac = token.split(".")
    # Another decision in the same signature, a flipped signature, and a made-up link.
    forged = json.loads(__import__("base64").urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged["w"] = "mallory"
    import base64
    other = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode().rstrip("=")
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    for bad in (f"{other}.{mac}", f"{payload}.{flipped}", "not-a-link", "a.b"):
        status, refused = api.post(f"/decide/{bad}", {})
        assert status == 403 and "signature does not match" in refused["detail"], (bad, refused)
        status, _, html = page(api, f"/decide/{bad}")
        assert status == 403 and "signature does not match" in html

    expired = sign(app_module.services.settings.link_secret, Link(task["id"], "approve", "bob", 1_000_000, "n1", None))
    status, refused = api.post(f"/decide/{expired}", {})
    assert status == 410 and "expired" in refused["detail"]
    status, _, html = page(api, f"/decide/{expired}")
    assert status == 410 and "expired" in html
    # A link signed with another key is tampered, however well-formed.
    alien = sign(b"k" * 32, Link(task["id"], "approve", "bob", 4_000_000_000, "n2", None))
    assert api.post(f"/decide/{alien}", {})[0] == 403
    assert task_of(api, task["id"])["status"] == "pending" and task_of(api, task["id"])["decisions"] is None


def test_links_keep_four_eyes_and_the_quorum(api):
    instance_id, task = expense(api, name="link_quorum", required=2, out_of=3)
    status, refused = api.post(f"/tasks/{task['id']}/links", {"decider": "alice"})
    assert status == 403 and "four-eyes" in refused["detail"]
    bobs, _ = mint(api, task["id"])
    carols, _ = mint(api, task["id"], decider="carol", expires_in=600)
    assert api.post(bobs["approve"], {})[1]["task"]["status"] == "pending"
    # Bob decided: another link for him is refused when minted and when used.
    assert api.post(f"/tasks/{task['id']}/links", {"decider": "bob"})[0] == 403
    status, decided = api.post(carols["reject"], {})
    assert status == 200 and decided["task"]["status"] == "pending" and decided["task"]["quorum"] == {
        "required": 2, "of": "board", "out_of": 3, "approved": 1, "rejected": 1}
    danas, _ = mint(api, task["id"], decider="dana")
    status, done = api.post(danas["approve"], {})
    assert status == 200 and done["task"]["status"] == "completed" and done["task"]["completed_by"] == "dana"
    assert api.wait(instance_id)["context_data"]["approved"] is True


def test_a_person_four_eyes_excludes_may_not_mint_a_link_for_someone_else(api):
    import app as app_module
    from chalicelib.errors import Forbidden

    _, task = expense(api, name="link_minter")
    record = app_module.services.tasks.get(task["id"])
    # Alice requested the expense: a link she minted for Bob would let her approve it.
    try:
        app_module.services.tasks.mint_links(record, "bob", None, "alice")
        raise AssertionError("the requester minted a link")
    except Forbidden as exc:
        assert "four-eyes" in str(exc.detail)
    minted = app_module.services.tasks.mint_links(record, "bob", None, "erin")  # someone else may
    assert minted["decider"] == "bob" and set(minted["links"]) == {"approve", "reject"}
    assert task_of(api, task["id"])["status"] == "pending"


def test_the_confirmation_form_posts_and_answers_a_page(api):
    _, task = expense(api, name="link_form")
    links, _ = mint(api, task["id"])
    form = "application/x-www-form-urlencoded"
    status, kind, html = page(api, links["reject"], "POST", "comment=not+this+quarter", form)
    assert status == 200 and kind.startswith("text/html") and "Rejected" in html and "bob" in html
    done = task_of(api, task["id"])
    assert done["status"] == "completed" and done["output_data"] == {"approved": False, "comments": "not this quarter"}
    status, _, html = page(api, links["reject"], "POST", "comment=again", form)
    assert status == 409 and "already used" in html


def test_minting_is_refused_for_what_cannot_be_decided(api):
    _, task = expense(api, name="link_refusals")
    assert api.post(f"/tasks/{task['id']}/links", {"expires_in": 10})[0] == 422
    assert api.post(f"/tasks/{task['id']}/links", {"expires_in": 999_999_999})[0] == 422
    assert api.post("/tasks/no-such-task/links", {})[0] == 404
    status, _ = api.post(f"/tasks/{task['id']}/links", {"decider": "carol"})
    assert status == 201
