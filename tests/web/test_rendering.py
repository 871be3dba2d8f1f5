"""The page shows what the bot posts as Slack would: every Block Kit block and element the bot
uses, mrkdwn with names for mentions and emoji for shortcodes, edits in place, deletions gone,
ephemerals only to their user, files with previews; and nothing the bot sends becomes markup."""

from __future__ import annotations

import random

import aiohttp
from playwright.async_api import Page, expect

from tests.web.workspace import Workspace, png


def md(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def plain(text: str) -> dict[str, str]:
    return {"type": "plain_text", "text": text}


def button(text: str, action_id: str, **extra: object) -> dict[str, object]:
    return {"type": "button", "text": plain(text), "action_id": action_id, **extra}


CHART = "https://grafana.example/chart.png"
CONFIRM = {
    "title": plain("Apply this change?"),
    "text": md("degraded-mode for *acme*"),
    "confirm": plain("Apply"),
    "deny": plain("Back"),
}
RICH_LIST = {
    "type": "rich_text_list",
    "style": "bullet",
    "elements": [
        {
            "type": "rich_text_section",
            "elements": [
                {"type": "text", "text": "paged ", "style": {"bold": True}},
                {"type": "usergroup", "usergroup_id": "S_ONCALL"},
            ],
        },
        {"type": "rich_text_section", "elements": [{"type": "user", "user_id": "U_BOB"}]},
    ],
}
BLOCKS = [
    {"type": "header", "text": plain("Triage · acme · breach :rotating_light:")},
    {
        "type": "section",
        "text": md("*Likely scenario B* · _escalation spike_ ~gone~ `4.1%`"),
        "accessory": button("Triage", "flk_run:x"),
    },
    {"type": "section", "fields": [md("*before*\n0.6%"), md("*after*\n4.1%")]},
    {"type": "divider"},
    {"type": "context", "elements": [md("13 probes in 195 ms · :x: 1 could not be read")]},
    {
        "type": "actions",
        "elements": [
            button("Diagnose B", "a", style="primary"),
            button("Confirm", "b", style="danger", confirm=CONFIRM),
            button("Cancel", "c"),
        ],
    },
    {"type": "image", "image_url": CHART, "alt_text": "trend", "title": plain("SLI trend")},
    {
        "type": "rich_text",
        "elements": [
            RICH_LIST,
            {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": "kubectl get cm"}]},
        ],
    },
]
MRKDWN = (
    "*bold* _italic_ ~strike~ `code` :white_check_mark: :pushpin: <@U_ALICE> <#C_SRE> <!subteam^S_ONCALL> "
    "<!here> <https://grafana.example/d/x?a=1&amp;b=2|Tenant Health> <mailto:x@example.com|mail>\n"
    "&gt; quoted line\n```kubectl rollout restart deployment/backend\n<not a link>```\nlast &lt;line&gt;"
)


async def test_every_block_and_element_the_bot_uses(workspace: Workspace, page: Page) -> None:
    await workspace.client.chat_postMessage(channel="C_INCIDENTS", text="triage acme", blocks=BLOCKS)
    await workspace.open(page)
    message = page.locator(".message").first
    await expect(message.locator(".block-header")).to_have_text("Triage · acme · breach 🚨")
    await expect(message.locator(".block-section b").first).to_have_text("Likely scenario B")
    await expect(message.locator(".block-section i").first).to_have_text("escalation spike")
    await expect(message.locator(".block-section s").first).to_have_text("gone")
    await expect(message.locator(".block-section code").first).to_have_text("4.1%")
    await expect(message.locator(".accessory .btn-default")).to_have_text("Triage")
    await expect(message.locator(".field")).to_have_count(2)
    await expect(message.locator(".field").nth(1)).to_contain_text("after")
    await expect(message.locator("hr.block-divider")).to_have_count(1)
    await expect(message.locator(".block-context")).to_contain_text("13 probes in 195 ms · ❌ 1 could not be read")
    await expect(message.locator(".block-actions .btn-primary")).to_have_text("Diagnose B")
    await expect(message.locator(".block-actions .btn-danger")).to_have_text("Confirm")
    await expect(message.locator(".block-actions .btn-default")).to_have_text("Cancel")
    await expect(message.locator("img.block-image")).to_have_attribute("src", CHART)
    await expect(message.locator(".image-title")).to_have_text("SLI trend")
    await expect(message.locator(".rich-list li")).to_have_text(["paged @oncall", "@bob"])
    await expect(message.locator(".rich-list b")).to_have_text("paged")
    await expect(message.locator(".block-rich pre")).to_have_text("kubectl get cm")
    # A confirm dialog first; its deny button sends nothing (no bot here would answer anyway).
    await message.locator(".btn-danger").click()
    dialog = page.locator(".dialog")
    await expect(dialog.locator(".dialog-title")).to_have_text("Apply this change?")
    await expect(dialog.locator(".dialog-text b")).to_have_text("acme")
    await expect(dialog.locator(".btn-danger")).to_have_count(0)  # the dialog has no danger style
    await dialog.get_by_text("Back").click()
    await expect(dialog).to_have_count(0)
    assert workspace.slack.calls("response_url") == []


async def test_mrkdwn_names_mentions_and_shows_emoji(workspace: Workspace, page: Page) -> None:
    await workspace.client.chat_postMessage(channel="C_INCIDENTS", text=MRKDWN)
    await workspace.open(page)
    body = page.locator(".message .message-body .mrkdwn").first
    await expect(body.locator("b")).to_have_text("bold")
    await expect(body.locator("i")).to_have_text("italic")
    await expect(body.locator("s")).to_have_text("strike")
    await expect(body.locator(":scope > code")).to_have_text("code")
    await expect(body.locator(".emoji")).to_have_text(["✅", "📌"])
    await expect(body.locator(".mention")).to_have_text(["@alice", "#sre", "@oncall", "@here"])
    link = body.locator("a")
    await expect(link).to_have_count(1)
    await expect(link).to_have_text("Tenant Health")
    await expect(link).to_have_attribute("href", "https://grafana.example/d/x?a=1&b=2")
    await expect(link).to_have_attribute("rel", "noopener noreferrer")
    await expect(body.locator(".unsafe-link")).to_have_text("mail")
    await expect(body.locator("blockquote")).to_have_text("quoted line")
    code_block = "kubectl rollout restart deployment/backend\n<not a link>"
    await expect(body.locator("pre.code-block")).to_have_text(code_block)
    await expect(body).to_contain_text("last <line>")


HOSTILE = [
    "<img src=x onerror=window.pwned=1>",
    "<javascript:window.pwned=1|click me>",
    '<https://ok.example" onmouseover="window.pwned=1|fine>',
    "*<b onclick=window.pwned=1>bold</b>*",
    "```</pre><script>window.pwned=1</script>```",
    "&lt;script&gt;window.pwned=1&lt;/script&gt;",
    ":<img src=x onerror=window.pwned=1>:",
]


async def test_untrusted_text_never_becomes_markup(workspace: Workspace, page: Page) -> None:
    for text in HOSTILE:
        await workspace.client.chat_postMessage(channel="C_INCIDENTS", text=text)
    header = "<b>not bold</b><img src=x onerror=window.pwned=1>"
    blocks = [
        {"type": "header", "text": plain(header)},
        {"type": "actions", "elements": [button("<i>go</i>", "u", url="javascript:window.pwned=1")]},
    ]
    await workspace.client.chat_postMessage(channel="C_INCIDENTS", text="x", blocks=blocks)
    await workspace.open(page)
    await expect(page.locator(".message")).to_have_count(len(HOSTILE) + 1)
    await expect(page.locator(".block-header")).to_have_text(header)
    await expect(page.locator(".block-actions .btn")).to_have_text("<i>go</i>")
    assert await page.evaluate("window.pwned") is None
    assert await page.locator(".messages img, .messages script, .messages [onerror], .messages [onclick]").count() == 0
    hrefs = await page.locator(".messages a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert all(h.startswith("https://") for h in hrefs), hrefs


ALPHABET = "*_~`<>|@#!:&;/\\ \n\"'=abcUSC_^()[]x"
PIECES = [
    "<",
    ">",
    "&lt;",
    "&gt;",
    "&amp;",
    "javascript:",
    "https://a.example/",
    "<@U_ALICE>",
    "```",
    "> ",
    ":x:",
    "<img src=x onerror=window.pwned=1>",
    "onclick=",
    "<script>",
    "\n",
]
ALLOWED_TAGS = {"DIV", "B", "I", "S", "CODE", "PRE", "BLOCKQUOTE", "BR", "A", "SPAN"}


def generated_texts(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    texts = []
    for _ in range(count):
        parts = [rng.choice(PIECES) if rng.random() < 0.3 else rng.choice(ALPHABET) for _ in range(rng.randint(1, 40))]
        texts.append("".join(parts))
    return texts


async def test_generated_mrkdwn_renders_to_allowed_elements_only(workspace: Workspace, page: Page) -> None:
    """Hundreds of generated texts full of mrkdwn and HTML specials, through the page's own
    renderer: only the elements mrkdwn makes, no attributes but safe ones, links only http(s)."""
    await workspace.open(page)
    texts = generated_texts(seed=17, count=400)
    report = await page.evaluate(
        """async (texts) => {
            const { mrkdwn } = await import("/static/mrkdwn.js");
            const names = { users: new Map([["U_ALICE", { id: "U_ALICE", name: "alice" }]]),
                            channels: new Map(), groups: new Map(), emoji: new Map([["x", "❌"]]) };
            const found = { tags: new Set(), attrs: new Set(), hrefs: [], texts: 0 };
            for (const text of texts) {
                const root = mrkdwn(text, names);
                for (const node of root.querySelectorAll("*")) {
                    found.tags.add(node.tagName);
                    for (const attr of node.attributes) found.attrs.add(attr.name);
                    if (node.tagName === "A") found.hrefs.push(node.getAttribute("href"));
                }
                if (root.textContent.length) found.texts += 1;
            }
            return { tags: [...found.tags], attrs: [...found.attrs], hrefs: found.hrefs, texts: found.texts,
                     pwned: window.pwned ?? null };
        }""",
        texts,
    )
    assert set(report["tags"]) <= ALLOWED_TAGS, report["tags"]
    assert set(report["attrs"]) <= {"class", "href", "target", "rel", "title"}, report["attrs"]
    assert all(h.startswith(("http://", "https://")) for h in report["hrefs"]), report["hrefs"]
    assert report["pwned"] is None
    assert report["texts"] > 300  # they rendered to something, not to nothing


async def test_edits_show_in_place_and_deleted_messages_go(workspace: Workspace, page: Page) -> None:
    slack, client = workspace.slack, workspace.client
    first = await client.chat_postMessage(channel="C_INCIDENTS", text="Triage of acme · 0/13 probes done")
    second = await client.chat_postMessage(channel="C_INCIDENTS", text="to be deleted")
    await workspace.open(page)
    edited = page.locator(f'.message[data-ts="{first["ts"]}"]')
    other = page.locator(f'.message[data-ts="{second["ts"]}"]')
    await expect(edited).to_contain_text("0/13 probes done")
    untouched = await other.element_handle()
    await client.chat_update(channel="C_INCIDENTS", ts=first["ts"], text="Triage of acme · 13/13 probes done")
    await expect(edited).to_contain_text("13/13 probes done")
    await expect(edited.locator(".edited")).to_have_text("(edited)")
    await expect(page.locator(".message")).to_have_count(2)
    # An edit rebuilds its own message only: the other one is the very same element.
    assert await untouched.evaluate("node => node.isConnected")
    # Deleted the way the bot can delete: a response_url's delete_original.
    url = slack.workspace.issue_response_url("actions", "C_INCIDENTS", "U_ALICE", source_ts=second["ts"])
    async with aiohttp.ClientSession() as http, http.post(url, json={"delete_original": True}) as answer:
        assert answer.status == 200
    await expect(other).to_have_count(0)
    await expect(page.locator(".message")).to_have_count(1)


async def test_ephemerals_show_only_to_their_user(workspace: Workspace, page: Page) -> None:
    client = workspace.client
    parent = await client.chat_postMessage(channel="C_INCIDENTS", text="incident thread")
    await client.chat_postEphemeral(channel="C_INCIDENTS", user="U_DAVE", text=":no_entry: Only members may confirm.")
    await client.chat_postEphemeral(
        channel="C_INCIDENTS", user="U_DAVE", thread_ts=parent["ts"], text="in the thread, for Dave"
    )
    await workspace.open(page, user="U_ALICE")
    await expect(page.locator("#messages .message")).to_have_count(1)
    await expect(page.locator(".ephemeral")).to_have_count(0)
    await workspace.open(page, user="U_DAVE", thread=parent["ts"])
    ephemeral = page.locator("#messages .ephemeral")
    await expect(ephemeral).to_contain_text("⛔ Only members may confirm.")
    await expect(ephemeral.locator(".only-you")).to_have_text("Only visible to you")
    await expect(ephemeral.locator(".author")).to_have_text("flk")
    await expect(page.locator("#thread .ephemeral")).to_contain_text("in the thread, for Dave")
    # What the page was sent for Alice held no ephemeral of Dave's at all.
    state = await page.evaluate("async () => (await fetch('/api/state?user=U_ALICE')).json()")
    assert not [key for key in state["items"] if key.startswith("e:")]


async def test_files_show_a_png_preview_and_text_downloads(workspace: Workspace, page: Page) -> None:
    client = workspace.client
    parent = await client.chat_postMessage(channel="C_INCIDENTS", text="acme")
    await client.files_upload_v2(
        channel="C_INCIDENTS", thread_ts=parent["ts"], filename="acme-sli.png", content=png(), title="acme · SLIs"
    )
    csv = "time,tenant,reason\n2026-11-26T16:05:03Z,acme,D_hat_above_tol\n"
    await client.files_upload_v2(
        channel="C_INCIDENTS",
        thread_ts=parent["ts"],
        filename="acme-escalations.csv",
        content=csv,
        title="acme escalations",
    )
    await client.files_upload_v2(
        channel="C_INCIDENTS",
        thread_ts=parent["ts"],
        filename="rca-acme.md",
        content="# RCA acme\n<script>x</script>\n",
        title="RCA draft",
    )
    await workspace.open(page, thread=parent["ts"])
    thread = page.locator("#thread")
    image = thread.locator(".file-image img")
    await expect(image).to_have_attribute("alt", "acme · SLIs")
    assert await image.evaluate("img => img.decode().then(() => img.naturalWidth)") == 8
    await expect(thread.locator(".file-image figcaption")).to_have_text("acme · SLIs")
    docs = thread.locator(".file-doc")
    await expect(docs).to_have_count(2)
    await expect(docs.nth(0).locator(".file-badge")).to_have_text("CSV")
    await expect(docs.nth(0).locator(".file-preview")).to_have_text(csv)
    await expect(docs.nth(1).locator(".file-preview")).to_have_text("# RCA acme\n<script>x</script>\n")
    await expect(docs.nth(1).locator("script")).to_have_count(0)
    download = docs.nth(0).locator("a.file-download")
    await expect(download).to_have_attribute("download", "acme-escalations.csv")
    fetched = await page.evaluate(
        """async (href) => { const r = await fetch(href);
           return [r.status, r.headers.get('content-disposition'), await r.text()]; }""",
        await download.get_attribute("href"),
    )
    assert fetched == [200, "attachment; filename*=UTF-8''acme-escalations.csv", csv]


async def test_a_streamed_task_plan_fills_in_and_ends_with_its_blocks(workspace: Workspace, page: Page) -> None:
    """The bot's native progress (FLK_SLACK_STREAMING=native): chat.startStream/appendStream/stopStream."""
    client = workspace.client
    parent = await client.chat_postMessage(channel="C_INCIDENTS", text="acme")
    started = await client.chat_startStream(
        channel="C_INCIDENTS",
        thread_ts=parent["ts"],
        recipient_team_id="T_SANDBOX",
        recipient_user_id="U_ALICE",
        chunks=[
            {"type": "plan_update", "title": "Triage of acme"},
            {"type": "task_update", "id": "sli", "title": "Escalation ratio", "status": "in_progress"},
            {"type": "task_update", "id": "logs", "title": "Backend logs", "status": "in_progress"},
        ],
    )
    await workspace.open(page, thread=parent["ts"])
    streamed = page.locator(f'#thread .message[data-ts="{started["ts"]}"]')
    await expect(streamed.locator(".task-plan-title")).to_have_text("Triage of acme")
    await expect(streamed.locator(".task")).to_have_text(["⏳ Escalation ratio", "⏳ Backend logs"])
    await expect(streamed.locator(".streaming")).to_have_text("streaming…")
    done = [
        {"type": "task_update", "id": "sli", "title": "Escalation ratio", "status": "complete", "output": "4.1%"},
        {"type": "task_update", "id": "logs", "title": "Backend logs", "status": "error", "output": "timeout"},
    ]
    await client.chat_appendStream(channel="C_INCIDENTS", ts=started["ts"], chunks=done)
    await expect(streamed.locator(".task")).to_have_text(["✅ Escalation ratio4.1%", "❌ Backend logstimeout"])
    await client.chat_stopStream(
        channel="C_INCIDENTS", ts=started["ts"], blocks=[{"type": "header", "text": plain("Triage · acme · breach")}]
    )
    await expect(streamed.locator(".block-header")).to_have_text("Triage · acme · breach")
    await expect(streamed.locator(".streaming")).to_have_count(0)
