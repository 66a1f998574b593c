"""Whether a result's unit is of the kind of quantity its LOINC code names.

French labs send glucose, creatinine, lipids, 25-OH vitamin D... in mass units (g/L, mg/L,
ng/mL) or in SI substance units (mmol/L, µmol/L, nmol/L), and LOINC has one code for each
(2345-7 mass, 14749-6 moles). A sender's table giving the mass code to the value in nmol/L
(or ours giving it to a local code sent in mmol/L) files a number whoever trends by code
reads in the wrong unit: '75 nmol/L' of 25-OH vitamin D under 1989-3 is 30 ng/mL, not 75.
Nothing is ever converted here (the factor depends on the molar mass): the value and unit
stay as sent, and the disagreement is said. Data: tables/loinc_properties.csv and
tables/ucum_properties.csv; a code or unit in neither is not checked.
"""

from __future__ import annotations

from functools import cache

from normalizers.tabledata import table

PROPERTY_NAMES = {"MCnc": "mass", "SCnc": "substance (moles)", "NCnc": "number"}


@cache
def _code_properties() -> dict[str, str]:
    return {row["loinc"]: row["property"] for row in table("loinc_properties")}


@cache
def _unit_properties() -> dict[str, str]:
    return {row["ucum"]: row["property"] for row in table("ucum_properties")}


def unit_contradicts_code(loinc: str, ucum: str) -> tuple[str, str] | None:
    """(the code's property, the unit's) when both are known and differ, else None."""
    code_property = _code_properties().get(loinc)
    if code_property is None:
        return None
    unit_property = _unit_properties().get(ucum)
    if unit_property is None or unit_property == code_property:
        return None
    return code_property, unit_property
