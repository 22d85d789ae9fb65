"""Display names shared by the application, the handover and the exports (one place each).

Plain words a nurse reads for the codes the record stores. No clinical rule lives here.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

PRODUCT_LABELS: dict[str, str] = {
    "ide-cel": "ide-cel (Abecma)",
    "cilta-cel": "cilta-cel (Carvykti)",
}
DRUG_LABELS: dict[str, str] = {
    "tocilizumab": "Tocilizumab",
    "dexamethasone": "Dexamethasone",
    "methylprednisolone": "Methylprednisolone",
    "anakinra": "Anakinra",
    "levetiracetam": "Levetiracetam",
    "other": "Other",
}
LAB_TEST_LABELS: dict[str, str] = {
    "neutrophils": "Neutrophils (ANC)",
    "platelets": "Platelets",
    "hemoglobin": "Haemoglobin",
    "lymphocytes": "Lymphocytes",
    "wbc": "White cells (WBC)",
    "ferritin": "Ferritin",
    "fibrinogen": "Fibrinogen",
    "triglycerides": "Triglycerides",
    "ldh": "LDH",
    "alt": "ALT",
    "ast": "AST",
    "bilirubin": "Bilirubin",
    "crp": "CRP",
    "igg": "IgG",
    "uric_acid": "Uric acid",
    "potassium": "Potassium",
    "phosphate": "Phosphate",
    "calcium": "Calcium",
}
EVENT_KIND_LABELS: dict[str, str] = {
    "vitals": "Vital signs",
    "crs_assessment": "CRS assessment",
    "ice_assessment": "ICE / ICANS assessment",
    "medication": "Medication",
    "lab": "Laboratory result",
    "toxicity": "Toxicity",
    "neuro_check": "Neurological check",
    "checklist": "Checklist item",
    "eligibility": "Eligibility screening",
    "alert": "Alert",
    "clock_anomaly": "Clock warning",
    "note": "Note",
    "correction": "Correction",
    "patient_update": "Patient details changed",
    "history_confirmation": "Dose history confirmed",
    "restored": "Restored from backup",
    "doctor_informed": "Doctor informed",
}
TOXICITY_LABELS: dict[str, str] = {
    "infection": "Infection",
    "iec_hs": "IEC-HS (HLH-like)",
    "movement_neurocognitive": "Movement / neurocognitive (MNT, parkinsonism)",
    "cranial_nerve_palsy": "Cranial nerve palsy",
    "hypogammaglobulinaemia": "Hypogammaglobulinaemia",
    "other": "Other",
}
