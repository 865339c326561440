"""Each person's injury severity on the KABCO scale, from the police report's injury fields.

The table follows NYS DMV's MV-104AN instructions (K killed; A severe lacerations, broken or
distorted limbs, internal injuries, unconscious; B visible minor injuries; C complaint of pain,
no visible injury) and NYC DOT's Vision Zero count of persons killed or severely injured (KSI),
which reads these report codes. docs/answers.md gives the table with its sources.
"""

import pyarrow as pa
import pyarrow.compute as pc

SEVERITIES = ("K", "A", "B", "C", "O")
SEVERITY_COLUMNS = ["person_injury", "emotional_status", "complaint"]
# The report's physical status that marks a serious injury (MV-104AN A: unconscious at the scene).
SERIOUS_STATUS = frozenset({"Apparent Death", "Unconscious", "Semiconscious", "Incoherent"})
# Physical complaints that are serious injuries (A) and those that are visible but minor (B).
SERIOUS_COMPLAINTS = frozenset(
    {
        "Amputation",
        "Concussion",
        "Internal",
        "Severe Bleeding",
        "Severe Lacerations",
        "Fracture - Distorted - Dislocation",
        "Crush Injuries",
        "Paralysis",
        "Severe Burn",
    }
)
VISIBLE_COMPLAINTS = frozenset(
    {"Minor Bleeding", "Contusion - Bruise", "Abrasion", "Minor Burn", "Moderate Burn"}
)
SEVERITY_NOTE = (
    "KABCO severity from person_injury, emotional_status and complaint. K: Killed. A, "
    "suspected serious injury: Injured, and unconscious, semiconscious, incoherent or in "
    "apparent death, or a complaint of amputation, concussion, internal injury, severe bleeding, "
    "severe lacerations, fracture or dislocation, crush injuries, paralysis or a severe burn. "
    "B, visible injury: Injured with minor bleeding, a bruise, an abrasion, or a minor or "
    "moderate burn. C, possible injury: any other Injured person. O: not injured."
)


def _among(column: pa.ChunkedArray, values: frozenset[str]) -> pa.ChunkedArray:
    """Whether each value is one of `values`, whatever its case and surrounding blanks."""
    keys = pa.array(sorted(value.upper() for value in values))
    return pc.is_in(pc.utf8_upper(pc.utf8_trim_whitespace(column)), value_set=keys).fill_null(False)


def injury_severity(persons: pa.Table) -> pa.ChunkedArray:
    """K, A, B, C or O for each person; never null."""
    injury = pc.utf8_upper(pc.utf8_trim_whitespace(persons["person_injury"]))
    killed = pc.equal(injury, "KILLED").fill_null(False)
    injured = pc.equal(injury, "INJURED").fill_null(False)
    serious = pc.or_(
        _among(persons["emotional_status"], SERIOUS_STATUS),
        _among(persons["complaint"], SERIOUS_COMPLAINTS),
    )
    visible = _among(persons["complaint"], VISIBLE_COMPLAINTS)
    hurt = pc.if_else(serious, "A", pc.if_else(visible, "B", "C"))
    return pc.if_else(killed, "K", pc.if_else(injured, hurt, "O"))
