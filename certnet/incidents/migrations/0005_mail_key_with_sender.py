"""A message's de-duplication key covers its sender as well as its Message-ID, so that another
sender's message reusing a Message-ID is not taken for a repeat; existing keys are recomputed."""

import hashlib

from django.db import migrations


def key_with_sender(apps, schema_editor):
    mail = apps.get_model("incidents", "InboundMail")
    for row in mail.objects.exclude(message_id="").only("pk", "message_id", "header_from").iterator():
        key = hashlib.sha256(f"{row.message_id}\n{row.header_from.lower()}".encode()).hexdigest()
        mail.objects.filter(pk=row.pk).update(message_key=key)


class Migration(migrations.Migration):
    dependencies = [("incidents", "0004_report_announced_at")]

    operations = [migrations.RunPython(key_with_sender, migrations.RunPython.noop)]
