"""Mail: the `Mailer` edge (SMTP or a mailbox folder) and the rendering of messages.

`build_mailer` is the one place that chooses the transport: SMTP when `WANGJIAN_SMTP_HOST` is
set, otherwise `.eml` files in `WANGJIAN_MAILBOX_DIR` (the embedded default, no server needed).
"""

from __future__ import annotations

from wangjian.campaign import CampaignConfig
from wangjian.mail.transport import Delivery, MailboxMailer, Mailer, Outgoing, SmtpMailer
from wangjian.settings import Settings

__all__ = ["Delivery", "MailboxMailer", "Mailer", "Outgoing", "SmtpMailer", "build_mailer"]


def build_mailer(settings: Settings, config: CampaignConfig) -> Mailer:
    """The transport the settings ask for (`config` is for wiring that depends on the campaign)."""
    if settings.smtp.enabled:
        return SmtpMailer(settings.smtp)
    return MailboxMailer(settings.mailbox_dir)
