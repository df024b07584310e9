"""E-mail over SMTP, with STARTTLS by default."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterable, Sequence
from email.message import EmailMessage

from rules.outage.alerts import Notice
from rules.outage.channels.base import ChannelContext, Delivery, DeliveryError
from rules.outage.config import EmailChannel
from rules.outage.messages import Renderer

__all__ = ["EmailDelivery"]


class EmailDelivery(Delivery[EmailChannel]):
    def __init__(self, config: EmailChannel, renderer: Renderer, context: ChannelContext) -> None:
        super().__init__(config, renderer, context)
        self.tls = ssl.create_default_context(cafile=config.ca_file)

    def secrets(self) -> Iterable[str | None]:
        return [self.config.password]

    def send(self, notices: Sequence[Notice]) -> None:
        c = self.config
        title, text = self.renderer.text(notices)
        msg = EmailMessage()
        msg["Subject"] = title
        msg["From"] = c.sender
        msg["To"] = ", ".join(c.to)
        msg.set_content(text)
        try:
            with smtplib.SMTP(c.host, c.port, timeout=c.timeout.total_seconds()) as smtp:
                if c.starttls:
                    smtp.starttls(context=self.tls)
                if c.username:
                    smtp.login(c.username, c.password or "")
                smtp.send_message(msg)
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryError(f"SMTP {c.host}: login refused", retry=False) from exc
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"SMTP {c.host}: recipients refused", retry=False) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise DeliveryError(f"SMTP {c.host}:{c.port}: {exc}", retry=True) from exc
