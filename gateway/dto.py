"""Request and response DTOs, named exactly as the ServiceStack service declares them.

pydantic is used here, at the HTTP boundary, and nowhere else. Each class also states its
DataContract: the XML namespace of its members and whether they keep declared order
(ServiceStack's own types use ``[DataMember(Order=n)]``) or DataContract's default ordinal
order. ``gateway.wire`` reads both, so a new DTO needs no serialiser code.
"""

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

DC_NS = "http://schemas.datacontract.org/2004/07/digitaluapi.ServiceModel"
SERVICESTACK_NS = "http://schemas.servicestack.net/types"


class Dto(BaseModel):
    """Base of every DTO: unknown input properties are ignored, types are not coerced."""

    model_config = ConfigDict(extra="ignore", strict=True)

    xml_namespace: ClassVar[str] = DC_NS
    # False: members are written in ordinal order of their names, as DataContract does.
    xml_declared_order: ClassVar[bool] = False
    # Members left out of XML when null ([DataMember(EmitDefaultValue=false)]), not nil:
    # extensions of the contract, so that the contract's output stays as it was.
    xml_omit_null: ClassVar[frozenset[str]] = frozenset()


class _ServiceStackType(Dto):
    xml_namespace: ClassVar[str] = SERVICESTACK_NS
    xml_declared_order: ClassVar[bool] = True


class ResponseError(_ServiceStackType):
    """One field-level error."""

    ErrorCode: str | None = None
    FieldName: str | None = None
    Message: str | None = None
    Meta: dict[str, str] | None = None


class ResponseStatus(_ServiceStackType):
    """ServiceStack's error envelope; StackTrace is never filled by this gateway."""

    ErrorCode: str | None = None
    Message: str | None = None
    StackTrace: str | None = None
    Errors: list[ResponseError] = Field(default_factory=list)
    Meta: dict[str, str] | None = None


# Members named ResponseStatus shadow the class inside their own class body.
_Status = ResponseStatus


# --- SendSMPPSmsRequest (declared by the seed) ----------------------------------------------


class SMPPMessage(Dto):
    """One message to send (and echoed back in the response)."""

    xml_omit_null: ClassVar[frozenset[str]] = frozenset({"sender", "scheduledAt", "validUntil"})

    channel: str | None = None
    to: str | None = None
    content: str | None = None
    clientMessageId: str | None = None
    # Extensions of the contract. The source address (an alphanumeric name of 1 to 11
    # characters, or a number); one the API key may use, else the channel's source_addr.
    sender: str | None = None
    # ISO 8601 with an offset, e.g. 2026-01-31T10:00:00Z: sent not before scheduledAt, and
    # not submitted from validUntil on (it fails as Expired).
    scheduledAt: str | None = None
    validUntil: str | None = None


class SendSMPPSmsRequest(Dto):
    """Sends an SMS to phone numbers provided."""

    Messages: list[SMPPMessage] | None = None


class SMPPResponseMsg(Dto):
    """The outcome for one recipient."""

    apiMessageId: str | None = None
    accepted: bool = False
    to: str | None = None
    error: str | None = None
    msg: SMPPMessage | None = None


class SMPPMsgResponse(Dto):
    """Response of SendSMPPSmsRequest."""

    messages: list[SMPPResponseMsg] | None = None
    error: str | None = None
    ResponseStatus: _Status | None = None


# --- status lookup (ours, in the same style) ------------------------------------------------


class SMPPStatusTransition(Dto):
    """One lifecycle step; ``at`` is ISO-8601 UTC."""

    status: str | None = None
    at: str | None = None
    detail: str | None = None


class SMPPMessageStatus(Dto):
    """Everything known about one message."""

    xml_omit_null: ClassVar[frozenset[str]] = frozenset(
        {"sender", "scheduledAt", "validUntil", "partIds", "partsArrived"})

    apiMessageId: str | None = None
    clientMessageId: str | None = None
    channel: str | None = None  # where it is sent now (a failover moves it along ``chain``)
    # Routed messages only: the route that chose its channel, and the channels it may fail
    # over along, its first channel first (its transitions show each move and why).
    route: str | None = None
    chain: list[str] | None = None
    to: str | None = None
    status: str | None = None
    encoding: str | None = None
    segments: int | None = None
    smscMessageIds: list[str] = Field(default_factory=list)
    attempts: int = 0
    errorCode: str | None = None
    errorText: str | None = None
    receiptStat: str | None = None
    receiptErr: str | None = None
    acceptedAt: str | None = None
    submittedAt: str | None = None
    doneAt: str | None = None
    transitions: list[SMPPStatusTransition] = Field(default_factory=list)
    door: str | None = None  # how it came in: "http" (the send API) or "smpp" (smpp-server)
    sender: str | None = None  # the source address it chose ('' / null: the channel's)
    # When it was scheduled for, and until when it may be submitted (absent when not asked)
    scheduledAt: str | None = None
    validUntil: str | None = None
    # A message an SMPP client concatenated itself (UDH or SAR): the message_id it was given
    # for each part, and "{arrived}/{total}" (fewer: sent incomplete after the wait).
    partIds: list[str] | None = None
    partsArrived: str | None = None


class GetSMPPSmsStatus(Dto):
    """Look one message up by the id this gateway gave it."""

    apiMessageId: str | None = None


class FindSMPPSmsStatus(Dto):
    """Look messages up by the caller's own id."""

    clientMessageId: str | None = None


class GetSMPPSmsStatusBatch(Dto):
    """Look many messages up at once."""

    apiMessageIds: list[str] | None = None


class SMPPStatusResponse(Dto):
    """Response of every status lookup."""

    messages: list[SMPPMessageStatus] | None = None
    ResponseStatus: _Status | None = None


# Response DTOs that can carry a whole-request error.
ErrorCarrier = SMPPMsgResponse | SMPPStatusResponse


# --- API key management (ours, in the same style) -------------------------------------------


class ApiKeyInfo(Dto):
    """A stored API key, never its secret. ``channels`` is ["*"] for every channel; rate,
    burst and dailyQuota count messages (recipients), 0 meaning no limit; times ISO-8601 UTC."""

    id: str | None = None
    name: str | None = None
    account: str | None = None
    parentAccount: str | None = None
    accountOwnership: str | None = None
    roles: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    rate: int = 0
    burst: int = 0
    dailyQuota: int = 0
    enabled: bool = False
    expiresAt: str | None = None
    createdAt: str | None = None
    lastUsedAt: str | None = None
    rotatedAt: str | None = None
    # the senders its messages may choose: exact, digit prefixes ending in '*', or ["*"] for
    # any; empty: none (the channel's source_addr)
    senders: list[str] = Field(default_factory=list)


class CreateApiKey(Dto):
    """Create a key; the response carries the key itself, this once."""

    name: str | None = None
    account: str | None = None
    parentAccount: str | None = None
    roles: list[str] | None = None
    channels: list[str] | None = None
    rate: int | None = None
    burst: int | None = None
    dailyQuota: int | None = None
    expiresAt: str | None = None
    senders: list[str] | None = None


class SetApiKeySenders(Dto):
    """Replace the senders a key's messages may choose ([] or none: only the channel's)."""

    id: str | None = None
    senders: list[str] | None = None


class GetApiKeys(Dto):
    """Every key the caller may manage, optionally of one account."""

    account: str | None = None


class GetApiKey(Dto):
    """One key by id."""

    id: str | None = None


class EnableApiKey(Dto):
    """Let a key work again."""

    id: str | None = None


class DisableApiKey(Dto):
    """Stop a key working (it answers 401 until enabled)."""

    id: str | None = None


class RotateApiKey(Dto):
    """Give a key a new secret (returned this once); the old one stops working at once."""

    id: str | None = None


class DeleteApiKey(Dto):
    """Delete a key."""

    id: str | None = None


class ApiKeyResponse(Dto):
    """One key; ``key`` is the secret, filled only by CreateApiKey and RotateApiKey."""

    key: str | None = None
    apiKey: ApiKeyInfo | None = None
    ResponseStatus: _Status | None = None


class ApiKeysResponse(Dto):
    """Response of GetApiKeys."""

    results: list[ApiKeyInfo] | None = None
    ResponseStatus: _Status | None = None


# --- SMPP users (ours, in the same style) ---------------------------------------------------


class SmppUserInfo(Dto):
    """A stored SMPP user, never its password. Limits as an API key's; ``maxBinds`` is how many
    binds it may hold at once over every smpp-server process; times ISO-8601 UTC."""

    systemId: str | None = None
    account: str | None = None
    roles: list[str] = Field(default_factory=list)
    channels: list[str] = Field(default_factory=list)
    rate: int = 0
    burst: int = 0
    dailyQuota: int = 0
    maxBinds: int = 0
    enabled: bool = False
    expiresAt: str | None = None
    createdAt: str | None = None
    rotatedAt: str | None = None
    senders: list[str] = Field(default_factory=list)  # as an API key's


class CreateSmppUser(Dto):
    """Create an SMPP user; the response carries its password, this once."""

    systemId: str | None = None
    account: str | None = None
    roles: list[str] | None = None
    channels: list[str] | None = None
    rate: int | None = None
    burst: int | None = None
    dailyQuota: int | None = None
    expiresAt: str | None = None
    maxBinds: int | None = None
    senders: list[str] | None = None


class SetSmppUserSenders(Dto):
    """Replace the source_addr values an SMPP user may submit with ([] or none: only an
    empty one, which sends with the channel's)."""

    systemId: str | None = None
    senders: list[str] | None = None


class GetSmppUsers(Dto):
    """Every SMPP user the caller may manage, optionally of one account."""

    account: str | None = None


class GetSmppUser(Dto):
    """One SMPP user by system_id."""

    systemId: str | None = None


class EnableSmppUser(Dto):
    """Accept an SMPP user's binds again."""

    systemId: str | None = None


class DisableSmppUser(Dto):
    """Refuse an SMPP user's binds from now on (binds already up stay until they end)."""

    systemId: str | None = None


class RotateSmppUser(Dto):
    """Give an SMPP user a new password (returned this once); the old one stops working."""

    systemId: str | None = None


class SmppUserResponse(Dto):
    """One SMPP user; ``password`` filled only by CreateSmppUser and RotateSmppUser."""

    password: str | None = None
    smppUser: SmppUserInfo | None = None
    ResponseStatus: _Status | None = None


class SmppUsersResponse(Dto):
    """Response of GetSmppUsers."""

    results: list[SmppUserInfo] | None = None
    ResponseStatus: _Status | None = None


# --- webhooks and mobile-originated messages (ours, in the same style) ----------------------


class InboundUrl(Dto):
    """Where a channel's MO messages for an account are POSTed."""

    channel: str | None = None
    url: str | None = None


class AccountWebhooks(Dto):
    """An account's webhook settings; the signing secret is shown only when it is set."""

    account: str | None = None
    callbackUrl: str | None = None
    inboundUrls: list[InboundUrl] = Field(default_factory=list)
    hasSecret: bool = False
    events: list[str] = Field(default_factory=list)  # the statuses the callback hears of
    maxBatch: int = 1  # events per POST; above 1 a POST carries {"events": [...]}
    maxBatchDelayMs: int = 100  # how long a batch that is not full waits for more


class GetAccountWebhooks(Dto):
    """An account's webhook settings."""

    account: str | None = None


class SetAccountCallback(Dto):
    """Set the URL that hears of every status change of the account's messages."""

    account: str | None = None
    url: str | None = None
    rotateSecret: bool | None = None
    # Omitted: kept as they are. events: statuses ("final" names the final ones).
    events: list[str] | None = None
    maxBatch: int | None = None
    maxBatchDelayMs: int | None = None


class DeleteAccountCallback(Dto):
    """Stop status webhooks for an account."""

    account: str | None = None


class SetInboundUrl(Dto):
    """Set the URL that receives a channel's MO messages for an account."""

    account: str | None = None
    channel: str | None = None
    url: str | None = None
    rotateSecret: bool | None = None


class DeleteInboundUrl(Dto):
    """Stop MO webhooks of a channel for an account."""

    account: str | None = None
    channel: str | None = None


class AccountWebhooksResponse(Dto):
    """An account's webhook settings; ``secret`` only when it was generated by this call."""

    secret: str | None = None
    webhooks: AccountWebhooks | None = None
    ResponseStatus: _Status | None = None


class DeadWebhook(Dto):
    """An event given up on after the max age; times ISO-8601 UTC."""

    id: str | None = None
    account: str | None = None
    eventId: str | None = None
    type: str | None = None
    apiMessageId: str | None = None
    moMessageId: str | None = None
    status: str | None = None
    reason: str | None = None
    attempts: int = 0
    queuedAt: str | None = None
    deadAt: str | None = None


class GetDeadWebhooks(Dto):
    """Dead-lettered webhook events, newest first (of one account, or every visible one)."""

    account: str | None = None
    limit: int | None = None


class DeadWebhooksResponse(Dto):
    """Response of GetDeadWebhooks."""

    results: list[DeadWebhook] | None = None
    ResponseStatus: _Status | None = None


class ReplayDeadWebhooks(Dto):
    """Queue dead-lettered events of an account for delivery again (all, or ``ids``)."""

    account: str | None = None
    ids: list[str] | None = None


class ReplayDeadWebhooksResponse(Dto):
    """How many dead-lettered events were queued again."""

    replayed: int = 0
    ResponseStatus: _Status | None = None


class SMPPMoMessage(Dto):
    """A mobile-originated message; ``receivedAt`` is ISO-8601 UTC; ``account`` owns it (none:
    no account owns its destination and the channel has no default account)."""

    moMessageId: str | None = None
    account: str | None = None
    channel: str | None = None
    source: str | None = None
    destination: str | None = None
    text: str | None = None
    parts: int = 1
    receivedAt: str | None = None


class GetSMPPMoMessages(Dto):
    """The newest MO messages the caller may see, optionally of one channel or account."""

    channel: str | None = None
    account: str | None = None
    limit: int | None = None


class SMPPMoResponse(Dto):
    """Response of GetSMPPMoMessages."""

    messages: list[SMPPMoMessage] | None = None
    ResponseStatus: _Status | None = None


# --- accounts: their parent, set explicitly ---------------------------------------------------


class AccountInfo(Dto):
    """An account: its parent (the Partner account that owns it, if any) and ``ownership``,
    who set that: 'Partner' (the Partner created the account) or 'Admin'."""

    account: str | None = None
    parentAccount: str | None = None
    ownership: str | None = None
    createdAt: str | None = None


class GetAccount(Dto):
    """One account."""

    account: str | None = None


class UpdateAccount(Dto):
    """Set (or, with none, clear) an account's parent; Admin only."""

    account: str | None = None
    parentAccount: str | None = None


class AccountResponse(Dto):
    """One account."""

    account: AccountInfo | None = None
    ResponseStatus: _Status | None = None


# --- number assignments: which account owns the MO messages to a destination ----------------


class ChannelNumber(Dto):
    """A destination (short code or number, without a leading '+') and the account that owns
    the channel's MO messages to it."""

    channel: str | None = None
    number: str | None = None
    account: str | None = None


class GetChannelNumbers(Dto):
    """Every number assigned on a channel."""

    channel: str | None = None


class GetChannelNumber(Dto):
    """One number's assignment."""

    channel: str | None = None
    number: str | None = None


class AssignChannelNumber(Dto):
    """Give an account the channel's MO messages to a number (replaces any other owner)."""

    channel: str | None = None
    number: str | None = None
    account: str | None = None


class UnassignChannelNumber(Dto):
    """Take a number from its account."""

    channel: str | None = None
    number: str | None = None


class ChannelNumberResponse(Dto):
    """One number's assignment."""

    assignment: ChannelNumber | None = None
    ResponseStatus: _Status | None = None


class ChannelNumbersResponse(Dto):
    """Response of GetChannelNumbers, by number."""

    results: list[ChannelNumber] | None = None
    ResponseStatus: _Status | None = None


class GetRoutes(Dto):
    """The routes of the configuration, in order: the first that matches a message routes it."""


class RouteChannel(Dto):
    """A channel of a route and its weight (its share of the route's messages)."""

    channel: str | None = None
    weight: int = 0


class RouteInfo(Dto):
    """One route: what it matches (every criterion given must) and where it sends."""

    name: str | None = None
    prefixes: list[str] | None = None
    countries: list[str] | None = None
    accounts: list[str] | None = None
    senders: list[str] | None = None  # exact senders, or digit prefixes ending in '*'
    hours: str | None = None
    days: list[str] | None = None
    channels: list[RouteChannel] | None = None
    fallbacks: list[str] | None = None
    failoverStatuses: list[str] | None = None
    passes: int = 1
    numberCheck: str | None = None
    byName: bool = False  # used only for messages naming it ("channel": "route:NAME")


class RoutesResponse(Dto):
    """Response of GetRoutes."""

    routes: list[RouteInfo] | None = None
    ResponseStatus: _Status | None = None

