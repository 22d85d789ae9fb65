"""Code systems and codes used by the FHIR export (only codes we are sure of).

LOINC codes are the ones of the FHIR R4 vital-signs profiles and the usual automated
blood-count codes. ICD-10-CM has graded codes for CRS (D89.83x, since FY2021) and ICANS
(G92.0x, since FY2022). Route codes are SNOMED CT concepts from the FHIR
``route-codes`` value set; drug codes are WHO ATC. Where no standard code is known to
us (a CRS grade observation, the ICE score and its items, oxygen device, a toxicity
description) the export uses ``code.text`` with a local ``urn:bedside:`` system rather
than inventing one.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ATC = "http://www.whocc.no/atc"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
OBS_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
IDENTIFIER_TYPE = "http://terminology.hl7.org/CodeSystem/v2-0203"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"
PERFORM_FUNCTION = "http://terminology.hl7.org/CodeSystem/med-admin-perform-function"

LOCAL_OBSERVATION = "urn:bedside:observation"
LOCAL_COMPONENT = "urn:bedside:component"
LOCAL_MRN = "urn:bedside:mrn"
LOCAL_PATIENT_ID = "urn:bedside:patient-id"
LOCAL_EVENT_ID = "urn:bedside:event-id"
LOCAL_TOXICITY = "urn:bedside:toxicity-category"
LOCAL_PERFORM_FUNCTION = "urn:bedside:perform-function"
"""Performer roles beyond the med-admin-perform-function codes (the ordering prescriber)."""

# (code, display) -------------------------------------------------------------- LOINC
BODY_TEMPERATURE = ("8310-5", "Body temperature")
HEART_RATE = ("8867-4", "Heart rate")
BP_PANEL = ("85354-9", "Blood pressure panel with all children optional")
SYSTOLIC = ("8480-6", "Systolic blood pressure")
DIASTOLIC = ("8462-4", "Diastolic blood pressure")
SPO2_PULSE_OX = ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry")
SPO2_ARTERIAL = ("2708-6", "Oxygen saturation in Arterial blood")
O2_FLOW = ("3151-8", "Inhaled oxygen flow rate")
RESPIRATORY_RATE = ("9279-1", "Respiratory rate")

LAB_LOINC: dict[str, tuple[str, str]] = {
    "neutrophils": ("751-8", "Neutrophils [#/volume] in Blood by Automated count"),
    "platelets": ("777-3", "Platelets [#/volume] in Blood by Automated count"),
    "hemoglobin": ("718-7", "Hemoglobin [Mass/volume] in Blood"),
    "lymphocytes": ("731-0", "Lymphocytes [#/volume] in Blood"),
    "wbc": ("6690-2", "Leukocytes [#/volume] in Blood by Automated count"),
}

UCUM_UNITS: dict[str, str] = {
    "10^9/L": "10*9/L",
    "/uL": "/uL",
    "g/dL": "g/dL",
    "g/L": "g/L",
    "mg": "mg",
    "g": "g",
    "mg/kg": "mg/kg",
    "mL": "mL",
    "Cel": "Cel",
    "/min": "/min",
    "mm[Hg]": "mm[Hg]",
    "%": "%",
    "L/min": "L/min",
    "min": "min",
}
"""Bedside unit -> UCUM code (a unit not listed is exported as text only)."""

# ---------------------------------------------------------------- ICD-10-CM (graded)
CRS_ICD10CM: dict[int, tuple[str, str]] = {
    g: (f"D89.83{g}", f"Cytokine release syndrome, grade {g}") for g in range(1, 6)
}
ICANS_ICD10CM: dict[int, tuple[str, str]] = {
    g: (f"G92.0{g}", f"Immune effector cell-associated neurotoxicity syndrome, grade {g}")
    for g in range(1, 6)
}

# ------------------------------------------------------------------------ routes, drugs
ROUTE_SNOMED: dict[str, tuple[str, str]] = {
    "IV": ("47625008", "Intravenous route"),
    "PO": ("26643006", "Oral route"),
    "SC": ("34206005", "Subcutaneous route"),
    "IM": ("78421000", "Intramuscular route"),
}
DRUG_ATC: dict[str, tuple[str, str]] = {
    "tocilizumab": ("L04AC07", "tocilizumab"),
    "dexamethasone": ("H02AB02", "dexamethasone"),
    "methylprednisolone": ("H02AB04", "methylprednisolone"),
    "anakinra": ("L04AC03", "anakinra"),
    "levetiracetam": ("N03AX14", "levetiracetam"),
}
