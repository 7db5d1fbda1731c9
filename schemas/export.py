"""Export the JSON Schema of every v1 contract to schemas/json/ (`python -m schemas.export`)."""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

import schemas

JSON_DIR = Path(__file__).parent / "json"
EXPORTED: tuple[type[BaseModel], ...] = (
    schemas.Submission,
    schemas.ReceivedSubmission,
    schemas.AcceptedSubmission,
    schemas.RejectedSubmission,
    schemas.SanitisedIntel,
    schemas.HeldIntel,
    schemas.HeldContent,
    schemas.Decision,
    schemas.DecisionReview,
    schemas.NotificationRecord,
    schemas.PendingNotification,
    schemas.WebhookAlert,
    schemas.DeadLetter,
    schemas.AuditEntry,
)


def rendered() -> dict[str, str]:
    """File name to JSON text, exactly as it should be on disk."""
    return {
        f"{model.__name__}.v1.json": json.dumps(model.model_json_schema(), indent=2, sort_keys=True) + "\n"
        for model in EXPORTED
    }


def main() -> None:
    JSON_DIR.mkdir(exist_ok=True)
    for name, text in rendered().items():
        (JSON_DIR / name).write_text(text)
        print(JSON_DIR / name)


if __name__ == "__main__":
    main()
