"""The SQL schema, one module per part of the service; every table is registered on ``Base.metadata``
by importing its module here, so ``from ntbcare.core.models import Ticket`` and Alembic see them all."""

from ntbcare.core.models.apikeys import ApiKey
from ntbcare.core.models.base import Base, BigId, UTCDateTime, utcnow
from ntbcare.core.models.console import TicketNote
from ntbcare.core.models.conversation import TicketHold
from ntbcare.core.models.deliveries import Delivery, DeliveryStatus, Event
from ntbcare.core.models.media import MediaFile, MediaStatus
from ntbcare.core.models.operators import Operator, OperatorRole, OperatorSession
from ntbcare.core.models.ratings import Rating, RatingValue
from ntbcare.core.models.replies import AgencyAnswer, Reply, ReplyStatus, ReplyTemplate, ServiceFlag
from ntbcare.core.models.routing import Agency, AgencySignIn, MailStatus, OutboundMail, RoutingDecision
from ntbcare.core.models.tickets import AuditEntry, Channel, Citizen, Ticket, TicketCounter, TicketMessage, TicketStatus

__all__ = [
    "Agency",
    "AgencyAnswer",
    "AgencySignIn",
    "ApiKey",
    "AuditEntry",
    "Base",
    "BigId",
    "Channel",
    "Citizen",
    "Delivery",
    "DeliveryStatus",
    "Event",
    "MailStatus",
    "MediaFile",
    "MediaStatus",
    "Operator",
    "OperatorRole",
    "OperatorSession",
    "OutboundMail",
    "Rating",
    "RatingValue",
    "Reply",
    "ReplyStatus",
    "ReplyTemplate",
    "RoutingDecision",
    "ServiceFlag",
    "Ticket",
    "TicketCounter",
    "TicketHold",
    "TicketMessage",
    "TicketNote",
    "TicketStatus",
    "UTCDateTime",
    "utcnow",
]
