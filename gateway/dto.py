"""Request and response DTOs, named exactly as the ServiceStack service declares them.

pydantic is used here, at the HTTP boundary, and nowhere else.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Dto(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class ResponseError(_Dto):
    ErrorCode: str | None = None
    FieldName: str | None = None
    Message: str | None = None
    Meta: dict[str, str] | None = None


class ResponseStatus(_Dto):
    ErrorCode: str | None = None
    Message: str | None = None
    StackTrace: str | None = None
    Errors: list[ResponseError] = Field(default_factory=list)
    Meta: dict[str, str] | None = None


# Members named ResponseStatus shadow the class inside their own class body.
_Status = ResponseStatus


class SMPPMessage(_Dto):
    channel: str | None = None
    to: str | None = None
    content: str | None = None
    clientMessageId: str | None = None


class SendSMPPSmsRequest(_Dto):
    Messages: list[SMPPMessage] | None = None


class SMPPResponseMsg(_Dto):
    apiMessageId: str | None = None
    accepted: bool = False
    to: str | None = None
    error: str | None = None
    msg: SMPPMessage | None = None


class SMPPMsgResponse(_Dto):
    messages: list[SMPPResponseMsg] | None = None
    error: str | None = None
    ResponseStatus: _Status | None = None


class SMPPStatusTransition(_Dto):
    status: str | None = None
    at: str | None = None
    detail: str | None = None


class SMPPMessageStatus(_Dto):
    apiMessageId: str | None = None
    clientMessageId: str | None = None
    channel: str | None = None
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


class GetSMPPSmsStatus(_Dto):
    apiMessageId: str | None = None


class FindSMPPSmsStatus(_Dto):
    clientMessageId: str | None = None


class GetSMPPSmsStatusBatch(_Dto):
    apiMessageIds: list[str] | None = None


class SMPPStatusResponse(_Dto):
    messages: list[SMPPMessageStatus] | None = None
    ResponseStatus: _Status | None = None
