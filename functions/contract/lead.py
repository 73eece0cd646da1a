"""The `Lead`: what a landing-page form may submit, validated and normalised.

Both functions import this model, so the ingest can never accept a lead the worker would
refuse. Every string is bounded, so one lead can never grow past a known size.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    ValidationInfo,
    field_validator,
)
from pydantic_core import PydanticCustomError

MAX_EMAIL_LENGTH = 254  # RFC 5321 path limit
MAX_CUSTOM_KEYS = 20
MAX_CUSTOM_VALUE_LENGTH = 500
CUSTOM_KEY_PATTERN = r"^[A-Za-z][A-Za-z0-9_]{0,63}$"

# A lead read back from the queue was normalised by the ingest; the worker confirms that form
# instead of parsing the address again (email-validator was most of a record's validation time).
ALREADY_NORMALISED = "already_normalised"  # validation context key
_NORMALISED_EMAIL = re.compile(r"[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+")
_CONTROL_CHARACTER = re.compile(r"[\x00-\x1f\x7f]")
_PHONE_ALLOWED = re.compile(r"^\+?[0-9(][0-9 ()./-]{4,30}$")  # "(202) 555-0143" is how many type it
_CAMPAIGN_ALLOWED = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,63}$")
# Ad platforms' click ids are URL-safe ASCII; anything else is not one (and would not survive a CRM export).
_CLICK_ID_ALLOWED = re.compile(r"^[\x21-\x7e]{1,500}$")
_CONSENT_NAME_ALLOWED = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
_PURPOSE_ALLOWED = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
MAX_CONSENT_PURPOSES = 10
MAX_URL_LENGTH = 2048
# The URL parameters leadpipe.js records on every page load: the five UTMs and the common ad click ids.
CLICK_ID_FIELDS = ("gclid", "gbraid", "wbraid", "fbclid", "msclkid", "li_fat_id", "ttclid")
# The one rule for what can travel and be stored: SQS's message character set (W3C XML `Char`).
# It also keeps out all PostgreSQL refuses in text and jsonb: NUL and lone surrogates.
SQS_MESSAGE_CHARACTERS = "\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff"
UNTRAVELLABLE_CHARACTER = re.compile(f"[^{SQS_MESSAGE_CHARACTERS}]")


def refuse_untravellable_text(value: Any) -> Any:
    """Refuse a string holding a character SQS or PostgreSQL would refuse; never strip it."""
    if isinstance(value, str):
        found = UNTRAVELLABLE_CHARACTER.search(value)
        if found:
            raise PydanticCustomError(
                "character_not_allowed",
                "contains {character}, a character that cannot be queued or stored",
                {"character": f"U+{ord(found.group()):04X}"},
            )
    return value


Travellable = BeforeValidator(refuse_untravellable_text)


def _blank_to_none(value: Any) -> Any:
    # An HTML form sends "" for every input the visitor left empty; that means "not given".
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _email_field(value: str, info: ValidationInfo) -> str:
    if info.context and info.context.get(ALREADY_NORMALISED):
        if value != value.lower() or not _NORMALISED_EMAIL.fullmatch(value):
            raise ValueError("is not an e-mail address in the form the ingest stores")
        return value
    return normalise_email(value)


def normalise_email(value: str) -> str:
    try:
        # No DNS look-up: the ingest must answer fast and never depend on the network.
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as error:
        raise ValueError(str(error)) from None
    # Lower-cased whole, so `Jane@Example.com` and `jane@example.com` dedupe to one lead.
    return checked.normalized.lower()


def _single_line(value: str) -> str:
    # CR/LF or other control characters in a name end up in CRM exports and e-mail headers.
    if _CONTROL_CHARACTER.search(value):
        raise ValueError("must be a single line of text without control characters")
    return value


def _normalise_phone(value: str) -> str:
    if not _PHONE_ALLOWED.fullmatch(value):
        raise ValueError("must be digits with an optional leading +, spaces, dots, dashes or parentheses")
    return " ".join(value.split())


def normalise_campaign(value: str) -> str:
    """A campaign code in the one form the contract stores (` summersale20 ` -> `SUMMERSALE20`); ValueError if none."""
    code = value.strip().upper()
    if not _CAMPAIGN_ALLOWED.fullmatch(code):
        raise ValueError("must be letters, digits, '-' or '_' (at most 64), e.g. SUMMERSALE20")
    return code


def _click_id(value: str) -> str:
    if not _CLICK_ID_ALLOWED.fullmatch(value):
        raise ValueError("must be 1 to 500 printable ASCII characters without spaces, as ad platforms send it")
    return value


def _consent_name(value: str) -> str:
    if not _CONSENT_NAME_ALLOWED.fullmatch(value):
        raise ValueError("must be letters, digits, '.', '_', ':', '/' or '-' (at most 100), e.g. newsletter-2026")
    return value


def _sha256_hex(value: str) -> str:
    digest = value.strip().lower()
    if not _SHA256_HEX.fullmatch(digest):
        raise ValueError("must be a SHA-256 as 64 hexadecimal digits")
    return digest


def _url_length(value: HttpUrl) -> HttpUrl:
    if len(str(value)) > MAX_URL_LENGTH:
        raise ValueError(f"must be at most {MAX_URL_LENGTH} characters")
    return value


def _purpose_list(value: Any) -> Any:
    # One field may list several ("newsletter offers"); checkboxes send one value each.
    if isinstance(value, str):
        value = [value]
    if isinstance(value, list | tuple):
        items = [part.lower() if isinstance(part, str) else part for item in value for part in _purpose_names(item)]
        if len(items) > MAX_CONSENT_PURPOSES:
            raise ValueError(f"at most {MAX_CONSENT_PURPOSES} purposes")
        return list(dict.fromkeys(items))
    return value


def _purpose_names(item: Any) -> list[Any]:
    return item.replace(",", " ").split() if isinstance(item, str) else [item]


def _purpose(value: str) -> str:
    if not _PURPOSE_ALLOWED.fullmatch(value):
        raise ValueError("must be lower-case letters, digits, '_' or '-' (at most 32), e.g. newsletter")
    return value


def _optional(*constraints: Any) -> Any:
    """An optional field: blank means absent, and the constraints apply to the string given."""
    return Annotated[Annotated[str, *constraints] | None, BeforeValidator(_blank_to_none), Travellable]


ShortText = _optional(StringConstraints(strip_whitespace=True, max_length=100), AfterValidator(_single_line))
Text = _optional(StringConstraints(strip_whitespace=True, max_length=200), AfterValidator(_single_line))
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=MAX_EMAIL_LENGTH),
    AfterValidator(_email_field),
    Travellable,
]
Phone = _optional(StringConstraints(strip_whitespace=True, max_length=32), AfterValidator(_normalise_phone))
Campaign = _optional(StringConstraints(max_length=80), AfterValidator(normalise_campaign))
CountryCode = _optional(StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2}$"))
LandingPage = Annotated[
    Annotated[HttpUrl, Field(description="http or https, at most 2048 characters")] | None,
    BeforeValidator(_blank_to_none),
    Travellable,
]
Url = Annotated[
    Annotated[
        HttpUrl, AfterValidator(_url_length), Field(description=f"http or https, at most {MAX_URL_LENGTH} characters")
    ]
    | None,
    BeforeValidator(_blank_to_none),
    Travellable,
]
ClickId = _optional(StringConstraints(strip_whitespace=True, max_length=500), AfterValidator(_click_id))
ConsentName = _optional(StringConstraints(strip_whitespace=True, max_length=100), AfterValidator(_consent_name))
Sha256Hex = _optional(StringConstraints(max_length=80), AfterValidator(_sha256_hex))
Purpose = Annotated[str, StringConstraints(max_length=32), AfterValidator(_purpose), Travellable]
Moment = Annotated[AwareDatetime | None, BeforeValidator(_blank_to_none), Travellable]
CustomKey = Annotated[str, StringConstraints(pattern=CUSTOM_KEY_PATTERN), Travellable]
CustomValue = Annotated[str, StringConstraints(max_length=MAX_CUSTOM_VALUE_LENGTH), Travellable]


class Touch(BaseModel):
    """One visit that brought the visitor: what the URL and the referrer said, as leadpipe.js saw it."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=MAX_URL_LENGTH)

    touched_at: Moment = Field(default=None, description="When the browser saw this visit (ISO 8601, with offset)")
    landing_page: Url = None
    referrer: Url = Field(
        default=None, description="The page that linked here, as the browser's referrer policy let it"
    )
    utm_source: Text = None
    utm_medium: Text = None
    utm_campaign: Text = None
    utm_term: Text = None
    utm_content: Text = None
    gclid: ClickId = None
    gbraid: ClickId = None
    wbraid: ClickId = None
    fbclid: ClickId = None
    msclkid: ClickId = None
    li_fat_id: ClickId = None
    ttclid: ClickId = None


def _empty_touch_is_none(value: Any) -> Any:
    # A form's blank inputs for a touch mean "no touch", as a blank input means "not given".
    if isinstance(value, dict) and all(v is None or isinstance(v, str) and not v.strip() for v in value.values()):
        return None
    return value


OptionalTouch = Annotated[Touch | None, BeforeValidator(_empty_touch_is_none)]
# Fields added to the contract after its first version: when a lead leaves them out, its id is the one the
# first version gave it, so a retry that straddles a deploy never becomes a second row.
FIELDS_ADDED_LATER = frozenset(
    {
        *CLICK_ID_FIELDS,
        "referrer",
        "first_touch",
        "last_touch",
        "consent_text_id",
        "consent_text_version",
        "consent_text_sha256",
        "consent_purposes",
        "consent_at",
        "consent_page",
    }
)


class Lead(BaseModel):
    """A validated, normalised lead. Unknown fields are refused so typos surface at once."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_max_length=2048)

    email: Email
    first_name: ShortText = None
    last_name: ShortText = None
    phone: Phone = None
    company: Text = None
    job_title: Text = None
    country: CountryCode = Field(default=None, description="ISO 3166-1 alpha-2 code, e.g. DE")
    campaign: Campaign = Field(default=None, description="Campaign or referral code, upper-cased")
    landing_page: LandingPage = None
    utm_source: Text = None
    utm_medium: Text = None
    utm_campaign: Text = None
    utm_term: Text = None
    utm_content: Text = None
    consent: bool = Field(default=False, description="The visitor ticked the consent box")
    custom: dict[CustomKey, CustomValue] = Field(
        default_factory=dict,
        description=f"Extra answers: at most {MAX_CUSTOM_KEYS} keys, values up to {MAX_CUSTOM_VALUE_LENGTH} characters",
    )
    # --- Attribution: the ad click ids and the referrer of the lead's own visit, and both touches
    gclid: ClickId = None
    gbraid: ClickId = None
    wbraid: ClickId = None
    fbclid: ClickId = None
    msclkid: ClickId = None
    li_fat_id: ClickId = None
    ttclid: ClickId = None
    referrer: Url = Field(default=None, description="The page that linked to the landing page")
    first_touch: OptionalTouch = Field(default=None, description="The first visit that brought the visitor")
    last_touch: OptionalTouch = Field(default=None, description="The latest visit that brought the visitor")
    # --- Consent evidence: what the visitor was shown, what they agreed to, when and where
    consent_text_id: ConsentName = Field(default=None, description="Which consent text was shown, e.g. newsletter")
    consent_text_version: ConsentName = Field(default=None, description="Its version, e.g. 3")
    consent_text_sha256: Sha256Hex = Field(default=None, description="SHA-256 of the text shown (64 hex digits)")
    consent_purposes: Annotated[tuple[Purpose, ...], BeforeValidator(_purpose_list)] = Field(
        default=(), description=f"Purposes agreed to (at most {MAX_CONSENT_PURPOSES}); none without consent"
    )
    consent_at: Moment = Field(default=None, description="When the visitor agreed; none without consent")
    consent_page: Url = Field(default=None, description="The page the consent was given on")

    @field_validator("landing_page")
    @classmethod
    def _landing_page_length(cls, value: HttpUrl | None) -> HttpUrl | None:
        if value is not None and len(str(value)) > 2048:
            raise ValueError("must be at most 2048 characters")
        return value

    @field_validator("custom", mode="before")
    @classmethod
    def _custom_is_bounded(cls, value: Any) -> Any:
        if value is None or value == "":
            return {}
        if isinstance(value, dict) and len(value) > MAX_CUSTOM_KEYS:
            raise ValueError(f"at most {MAX_CUSTOM_KEYS} keys")
        return value

    @field_validator("consent", mode="before")
    @classmethod
    def _unticked_checkbox(cls, value: Any) -> Any:
        return False if value is None or value == "" else value

    @field_validator("consent_purposes", "consent_at")
    @classmethod
    def _nothing_agreed_without_consent(cls, value: Any, info: ValidationInfo) -> Any:
        # An unticked box is no consent, whatever hidden fields came with it: stored as such.
        if info.data.get("consent") is not True:
            return () if info.field_name == "consent_purposes" else None
        return value

    def to_record(self) -> dict[str, Any]:
        """The lead as JSON-ready data, the form in which it travels and is stored."""
        return self.model_dump(mode="json")

    def identity_record(self) -> dict[str, Any]:
        """`to_record` without the later fields the lead left empty: what its id is derived from."""
        record = self.to_record()
        for name in FIELDS_ADDED_LATER:
            if record[name] in (None, [], ()):
                del record[name]
        return record


def lead_json_schema() -> dict[str, Any]:
    """JSON Schema of what a form may POST (used for docs and the OpenAPI document)."""
    return Lead.model_json_schema(mode="validation")
