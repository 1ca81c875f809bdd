"""What admins run the system with: run-time settings (`settings.get`/`settings.save`), the audit log
(`audit.record`), system and queue health (`health`, `system`), data retention (`retention.purge`) and the
settings page's connection check (`whatsapp_check`) and the account's standing with WhatsApp (`account_status`)."""
