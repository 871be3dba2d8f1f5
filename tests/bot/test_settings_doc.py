"""The README's configuration reference is the one generated from the settings model."""

from __future__ import annotations

from pathlib import Path

from bot.service.settings import Settings, env_name
from bot.service.settings_doc import block, readme_block, reference

README = Path(__file__).resolve().parents[2] / "README.md"


def test_the_readme_holds_the_generated_reference() -> None:
    # On failure: python -m bot.service.settings_doc --write README.md
    assert readme_block(README.read_text()) == block()


def test_every_setting_is_described_with_its_variable_type_and_default() -> None:
    table = reference().splitlines()
    assert len(table) == 2 + len(Settings.model_fields)
    for field, info in Settings.model_fields.items():
        assert info.description, f"{field} has no description"
        row = next(line for line in table if line.startswith(f"| `{env_name(field)}` |"))
        assert info.description.replace("|", "\\|") in row
    rows = {line.split(" | ")[0].strip("| `"): line for line in table[2:]}
    assert "**required**" in rows["SLACK_BOT_TOKEN"] and "| secret |" in rows["SLACK_BOT_TOKEN"]
    assert "`fractal-lba`" in rows["FLK_NAMESPACE"]
    assert "`json` \\| `text`" in rows["FLK_LOG_FORMAT"]
    assert "number 0–30" in rows["FLK_PROGRESS_INTERVAL_S"]
