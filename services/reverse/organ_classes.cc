#include "services/reverse/organ_classes.h"

#include <algorithm>
#include <cctype>

namespace fedrx::reverse {
namespace {

// Where the codes come from. Test codes and specimen names marked (*) below
// were checked against the two SEND studies in the project's test data (the
// PhUSE PointCross PC201708 rat study, SEND 3.0, and the CBER hepatitis B
// vaccine pilot, SEND 3.1): LBTESTCD ALT AST ALP BILI BILDIR GGT UREAN CREAT
// CK ALB PROT GLOBUL ALBGLOB GLUC CHOL TRIG SODIUM K CA PHOS CL HGB HCT RBC
// RETI WBC NEUT LYM EOS PLAT PT APTT FIBRINO SPGRAV VOLUME, EGTESTCD QTCBAG
// PRAG RRAG, VSTESTCD HR, BWTESTCD BW, FWTESTCD FC, CLTESTCD CS OP, ISTESTCD
// IGMHBA IGGHBA, and the MISPEC/OMSPEC values used here (MISPEC EAR excepted). Codes not seen in
// those studies (TROPONI, AMYLASE, LIPASE, TSH, T4, T3, SYSBP, DIABP, RESP)
// and MISPEC EAR are the CDISC SEND/SDTM controlled-terminology values as
// published, not yet re-checked against the current CT package.
//
// Assay families: Tox21 column names (NR-*, SR-*) and ToxCast assay-source
// prefixes (TOX21_, ATG_ Attagene, BSK_ BioMAP, NVS_ NovaScreen, APR_
// Apredica, CLD_ CellzDirect, CEETOX_ H295R, NCCT_, OT_ Odyssey Thera, ACEA_,
// Tanguay_/NHEERL_ zebrafish), as in MoleculeNet toxcast.csv (617 end-points).

SendEndpoint Lb(std::string code, std::string note) {
  return {"LB", std::move(code), std::move(note)};
}
SendEndpoint Mi(std::string spec, std::string note = "histopathology") {
  return {"MI", std::move(spec), std::move(note)};
}
SendEndpoint Om(std::string spec, std::string note = "organ weight") {
  return {"OM", std::move(spec), std::move(note)};
}

std::vector<OrganClass> BuildTable() {
  std::vector<OrganClass> t;
  t.push_back({"Hepatobiliary disorders",
               {Lb("ALT", "hepatocellular injury"),
                Lb("AST", "hepatocellular injury"),
                Lb("ALP", "cholestasis"),
                Lb("BILI", "total bilirubin: excretory function"),
                Lb("BILDIR", "direct bilirubin: cholestasis"),
                Lb("GGT", "biliary injury"),
                Mi("LIVER"),
                Om("LIVER", "hypertrophy, enzyme induction"),
                {"MA", "LIVER", "gross pathology"}},
               {"SR-MMP", "TOX21_MMP", "APR_Hepat", "APR_HepG2", "CLD_", "ATG_PXR", "ATG_CAR",
                "ATG_FXR", "TOX21_FXR", "SR-ARE", "TOX21_ARE", "ATG_NRF2"},
               "transaminases and bilirubin are the clinical DILI signal (Hy's law); "
               "mitochondrial dysfunction, oxidative stress and PXR/CAR/FXR activation are its "
               "in-vitro correlates",
               "FDA 2009 guidance Drug-Induced Liver Injury: Premarketing Clinical Evaluation; "
               "Dykens & Will 2007 Drug Discov Today 12:777",
               ""});
  t.push_back({"Metabolism and nutrition disorders",
               {Lb("GLUC", "glycaemia"),
                Lb("CHOL", "lipids"),
                Lb("TRIG", "lipids"),
                Lb("ALB", "nutritional status"),
                Lb("PROT", "nutritional status"),
                Lb("SODIUM", "electrolytes"),
                Lb("K", "electrolytes"),
                Lb("CA", "electrolytes"),
                Lb("PHOS", "electrolytes"),
                {"BW", "BW", "body weight"},
                {"FW", "FC", "food consumption"}},
               {"NR-PPAR-gamma", "TOX21_PPARg", "TOX21_PPARd", "ATG_PPAR", "ATG_PPRE", "ATG_LXR",
                "ATG_RXR", "ATG_SREBP"},
               "clinical chemistry, body weight and food intake of repeat-dose studies; nuclear "
               "receptors of glucose and lipid metabolism",
               "ICH M3(R2) repeat-dose toxicity endpoints; OECD TG 408",
               ""});
  t.push_back({"Product issues",
               {},
               {},
               "quality or device problems of a marketed product",
               "MedDRA SOC definition",
               "not a biological effect of the compound"});
  t.push_back({"Eye disorders",
               {{"CL", "OP", "ophthalmology examination"},
                Mi("EYE"),
                Mi("NERVE, OPTIC"),
                Mi("GLAND, HARDERIAN")},
               {"Tanguay_ZF_120hpf_EYE"},
               "ophthalmoscopy and ocular histopathology of repeat-dose studies; zebrafish eye "
               "malformation",
               "OECD TG 408 (ophthalmological examination)",
               ""});
  t.push_back({"Investigations",
               {Lb("ALT", "clinical chemistry panel"),
                Lb("AST", "clinical chemistry panel"),
                Lb("CREAT", "clinical chemistry panel"),
                Lb("UREAN", "clinical chemistry panel"),
                Lb("GLUC", "clinical chemistry panel"),
                Lb("HGB", "haematology panel"),
                Lb("WBC", "haematology panel"),
                Lb("PLAT", "haematology panel"),
                {"EG", "QTCBAG", "ECG intervals"},
                {"BW", "BW", "body weight"}},
               {},
               "the class collects abnormal test results of any organ; its correlate is the "
               "standard clinical pathology panel, not one assay family",
               "MedDRA SOC definition; OECD TG 408 clinical pathology",
               ""});
  t.push_back({"Musculoskeletal and connective tissue disorders",
               {Lb("CK", "muscle injury"), Lb("AST", "muscle injury (with CK)"),
                Lb("CA", "bone mineral"), Lb("PHOS", "bone mineral"),
                Mi("MUSCLE, QUADRICEPS FEMORIS"), Mi("BONE, STERNUM"), Mi("JOINT, HIP")},
               {"SR-MMP", "TOX21_MMP", "BSK_hDFCGF", "TOX21_VDR", "ATG_VDR"},
               "CK and skeletal muscle histopathology for myopathy (mitochondrial mechanism, "
               "e.g. statins); bone and joint histopathology; fibroblast and vitamin D receptor "
               "assays",
               "Dykens & Will 2007; OECD TG 408 histopathology list",
               ""});
  t.push_back({"Gastrointestinal disorders",
               {Mi("STOMACH"),
                Mi("SMALL INTESTINE, DUODENUM"),
                Mi("SMALL INTESTINE, JEJUNUM"),
                Mi("SMALL INTESTINE, ILEUM"),
                Mi("LARGE INTESTINE, COLON"),
                Mi("ESOPHAGUS"),
                Mi("PANCREAS"),
                Lb("AMYLASE", "pancreatic injury"),
                Lb("LIPASE", "pancreatic injury"),
                {"CL", "CS", "clinical signs: emesis, diarrhoea"}},
               {"SR-p53", "TOX21_p53", "SR-ATAD5", "TOX21_ELG1"},
               "GI histopathology and clinical signs; injury to the rapidly dividing epithelium "
               "follows DNA damage and antiproliferative activity",
               "OECD TG 408 histopathology list",
               ""});
  t.push_back({"Social circumstances",
               {},
               {},
               "social and environmental circumstances of the patient",
               "MedDRA SOC definition",
               "no preclinical correlate: not a biological effect"});
  t.push_back({"Immune system disorders",
               {Lb("WBC", "leukocytes"), Lb("LYM", "lymphocytes"), Lb("EOS", "eosinophils"),
                Lb("GLOBUL", "globulin"), Lb("ALBGLOB", "albumin/globulin ratio"), Om("THYMUS"),
                Om("SPLEEN"), Mi("THYMUS"), Mi("SPLEEN"), Mi("LYMPH NODE, MESENTERIC"),
                Mi("BONE MARROW, FEMUR")},
               {"BSK_3C", "BSK_4H", "BSK_BE3C", "BSK_LPS", "BSK_SAg", "TOX21_NFkB", "ATG_NF_kB"},
               "standard toxicity study immune endpoints; where they flag a concern, a T-cell "
               "dependent antibody response study (IS domain; its test codes are antigen-specific, "
               "e.g. IGMHBA in the CBER pilot); BioMAP primary-cell immune panels and NF-kB "
               "signalling",
               "ICH S8 Immunotoxicity Studies for Human Pharmaceuticals",
               ""});
  t.push_back({"Reproductive system and breast disorders",
               {Om("TESTIS"), Om("OVARY"), Mi("TESTIS"), Mi("EPIDIDYMIS"), Mi("OVARY"),
                Mi("UTERUS"), Mi("GLAND, PROSTATE"), Mi("GLAND, MAMMARY")},
               {"NR-AR", "NR-ER", "NR-Aromatase", "TOX21_AR_", "TOX21_ERa", "TOX21_Aromatase",
                "ATG_AR", "ATG_ERa", "ATG_ERE", "OT_AR", "OT_ER", "ACEA_T47D", "CEETOX_H295R"},
               "reproductive organ weights and histopathology; androgen/oestrogen receptor, "
               "aromatase and steroidogenesis assays",
               "ICH S5(R3) Detection of Reproductive and Developmental Toxicity; OECD TG 408",
               ""});
  t.push_back({"Neoplasms benign, malignant and unspecified (incl cysts and polyps)",
               {{"TF", "LIVER", "tumour findings (carcinogenicity studies), all tissues"},
                Mi("LIVER", "preneoplastic findings, e.g. hepatocellular hypertrophy/foci")},
               {"SR-p53", "TOX21_p53", "SR-ATAD5", "TOX21_ELG1", "NR-AhR", "TOX21_AhR", "ATG_Ahr"},
               "tumour findings of carcinogenicity studies; DNA damage response and AhR "
               "activation as genotoxic and non-genotoxic mechanisms",
               "ICH S1B(R1) carcinogenicity; ICH S2(R1) genotoxicity",
               ""});
  t.push_back({"General disorders and administration site conditions",
               {{"CL", "CS", "clinical signs incl. dose site"},
                {"BW", "BW", "body weight"},
                {"FW", "FC", "food consumption"}},
               {},
               "general condition (fatigue, oedema, pyrexia, injection-site reactions) shows as "
               "clinical signs and body weight; no specific assay family",
               "OECD TG 408 clinical observations",
               ""});
  t.push_back(
      {"Endocrine disorders",
       {Om("GLAND, THYROID"), Om("GLAND, ADRENAL"), Om("GLAND, PITUITARY"), Mi("GLAND, THYROID"),
        Mi("GLAND, ADRENAL"), Mi("GLAND, PITUITARY"), Lb("TSH", "thyroid axis"),
        Lb("T4", "thyroid axis"), Lb("T3", "thyroid axis")},
       {"TOX21_TR", "ATG_THRa1", "NVS_NR_hTRa", "NCCT_TPO", "CEETOX_H295R", "TOX21_GR", "ATG_GR"},
       "endocrine organ weights, histopathology and thyroid hormones; thyroid "
       "receptor, thyroperoxidase, glucocorticoid receptor and steroidogenesis assays",
       "OECD TG 407/408 thyroid endpoints; OECD GD 150 endocrine disruptor assays",
       ""});
  t.push_back({"Surgical and medical procedures",
               {},
               {},
               "procedures performed on the patient",
               "MedDRA SOC definition",
               "no preclinical correlate: records procedures, not effects"});
  t.push_back({"Vascular disorders",
               {{"VS", "SYSBP", "systolic blood pressure"},
                {"VS", "DIABP", "diastolic blood pressure"},
                Mi("ARTERY, AORTA"),
                Mi("HEART", "coronary and intramural arteries")},
               {"BSK_CASM3C", "BSK_3C", "BSK_4H", "NVS_IC_rCaDHPRCh_L"},
               "blood pressure (safety pharmacology) and drug-induced vascular injury on "
               "histopathology; endothelial and arterial smooth muscle primary-cell panels",
               "ICH S7A Safety Pharmacology Studies",
               ""});
  t.push_back(
      {"Blood and lymphatic system disorders",
       {Lb("HGB", "anaemia"), Lb("HCT", "anaemia"), Lb("RBC", "anaemia"),
        Lb("RETI", "regeneration"), Lb("WBC", "leukopenia"), Lb("NEUT", "neutropenia"),
        Lb("PLAT", "thrombocytopenia"), Lb("PT", "coagulation"), Lb("APTT", "coagulation"),
        Lb("FIBRINO", "coagulation"), Mi("BONE MARROW, STERNUM"), Mi("SPLEEN"), Om("SPLEEN")},
       {"SR-p53", "TOX21_p53", "SR-ATAD5", "TOX21_ELG1"},
       "haematology, coagulation and bone marrow histopathology; myelosuppression "
       "follows DNA damage in dividing progenitors",
       "OECD TG 408 haematology; ICH S9",
       ""});
  t.push_back({"Skin and subcutaneous tissue disorders",
               {Mi("SKIN"), {"CL", "CS", "clinical signs: skin lesions"}},
               {"BSK_KF3CT", "BSK_hDFCGF", "SR-ARE", "TOX21_ARE", "ATG_NRF2"},
               "skin histopathology and clinical signs; keratinocyte/fibroblast panels and the "
               "Keap1-Nrf2-ARE pathway of skin sensitisation",
               "OECD TG 442D (ARE-Nrf2 luciferase key event of skin sensitisation)",
               ""});
  t.push_back({"Congenital, familial and genetic disorders",
               {Mi("UTERUS",
                   "embryo-fetal development study: implantation and resorption "
                   "(fetal findings under SENDIG-DART)")},
               {"Tanguay_ZF", "NHEERL_ZF", "ATG_RAR", "TOX21_p53"},
               "embryo-fetal development studies; zebrafish developmental toxicity and "
               "retinoic acid receptor assays",
               "ICH S5(R3); Truong et al. 2014 Toxicol Sci 137:212 (zebrafish)",
               ""});
  t.push_back({"Infections and infestations",
               {Lb("WBC", "immunosuppression"), Lb("NEUT", "immunosuppression"),
                Lb("LYM", "immunosuppression"), Om("THYMUS"), Om("SPLEEN"), Mi("THYMUS"),
                Mi("SPLEEN"), Mi("BONE MARROW, FEMUR")},
               {"BSK_SAg", "BSK_LPS", "BSK_3C"},
               "infections follow immunosuppression, which shows in leukocytes and lymphoid "
               "organs; infection itself is not modelled in standard toxicity studies",
               "ICH S8",
               ""});
  t.push_back({"Respiratory, thoracic and mediastinal disorders",
               {Mi("LUNG"),
                Mi("TRACHEA"),
                Mi("LARYNX"),
                {"MA", "LUNG", "gross pathology"},
                {"VS", "RESP", "respiratory rate (safety pharmacology)"}},
               {"BSK_BE3C"},
               "respiratory safety pharmacology and lung histopathology; bronchial epithelial "
               "cell panel",
               "ICH S7A (respiratory system in the core battery)",
               ""});
  t.push_back({"Psychiatric disorders",
               {{"CL", "CS", "clinical signs / functional observational battery"}, Mi("BRAIN")},
               {"NVS_TR_hSERT", "NVS_TR_hDAT", "NVS_TR_hNET", "NVS_GPCR", "NVS_LGIC"},
               "no validated animal model of psychiatric adverse events; behavioural clinical "
               "signs and CNS receptor and transporter pharmacology are proxies",
               "ICH S7A (CNS core battery); Bowes et al. 2012 Nat Rev Drug Discov 11:909",
               ""});
  t.push_back(
      {"Renal and urinary disorders",
       {Lb("UREAN", "urea nitrogen (BUN): glomerular filtration"),
        Lb("CREAT", "glomerular filtration"), Lb("PROT", "urinalysis (LBSPEC URINE): proteinuria"),
        Lb("GLUC", "urinalysis (LBSPEC URINE): tubular glucosuria"),
        Lb("SPGRAV", "urinalysis (LBSPEC URINE): concentrating ability"),
        Lb("VOLUME", "urinalysis (LBSPEC URINE)"), Mi("KIDNEY"), Om("KIDNEY"),
        Mi("URINARY BLADDER"), Mi("URETER")},
       {"SR-MMP", "TOX21_MMP", "SR-HSE", "TOX21_HSE", "SR-ARE", "TOX21_ARE"},
       "BUN, creatinine and urinalysis with kidney histopathology; no kidney-specific "
       "assay in the panels, so general stress (mitochondrial, heat shock, oxidative) "
       "assays stand in for tubular injury",
       "Dieterle et al. 2010 Nat Biotechnol 28:455 (PSTC nephrotoxicity biomarkers)",
       ""});
  t.push_back({"Pregnancy, puerperium and perinatal conditions",
               {Mi("UTERUS", "DART studies: pregnancy outcome (SENDIG-DART)"), Mi("OVARY")},
               {"Tanguay_ZF", "NHEERL_ZF", "NR-ER", "TOX21_ERa"},
               "pregnancy and perinatal outcomes come from DART studies; developmental and "
               "oestrogen receptor assays",
               "ICH S5(R3)",
               ""});
  t.push_back({"Ear and labyrinth disorders",
               {Mi("EAR", "cochlear histopathology, in dedicated ototoxicity studies only")},
               {"Tanguay_ZF_120hpf_OTIC"},
               "ototoxicity is not part of standard protocols; dedicated studies examine the "
               "cochlea; zebrafish otic vesicle malformation",
               "weakly established: no ICH guideline endpoint",
               ""});
  t.push_back({"Cardiac disorders",
               {{"EG", "QTCBAG", "QTc interval"},
                {"EG", "PRAG", "PR interval"},
                {"EG", "RRAG", "RR interval"},
                {"VS", "HR", "heart rate"},
                Lb("TROPONI", "cardiomyocyte injury"),
                Lb("CK", "muscle injury"),
                Mi("HEART"),
                Om("HEART")},
               {"NVS_IC_hKhERGCh", "NVS_IC_rCaDHPRCh_L", "NVS_IC_rNaCh", "SR-MMP", "TOX21_MMP"},
               "QT prolongation (hERG block), heart rate and troponin with cardiac "
               "histopathology; ion channel binding and mitochondrial toxicity",
               "ICH S7B and E14; Bowes et al. 2012",
               ""});
  t.push_back({"Nervous system disorders",
               {{"CL", "CS", "clinical signs / functional observational battery"},
                Mi("BRAIN"),
                Mi("SPINAL CORD, CERVICAL"),
                Mi("NERVE, SCIATIC"),
                Om("BRAIN")},
               {"NVS_IC", "NVS_LGIC", "NVS_TR", "NVS_GPCR", "Tanguay_ZF_120hpf_SWIM",
                "Tanguay_ZF_120hpf_BRAI"},
               "CNS safety pharmacology and neuropathology incl. peripheral nerve; ion channel, "
               "transporter and receptor binding",
               "ICH S7A; OECD TG 424 neurotoxicity",
               ""});
  t.push_back({"Injury, poisoning and procedural complications",
               {},
               {},
               "overdoses, accidents and procedural complications",
               "MedDRA SOC definition",
               "no established preclinical correlate: overdose toxicity is the whole "
               "toxicity profile, not one organ"});
  return t;
}

std::string Fold(std::string_view s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return {};
  const auto e = s.find_last_not_of(" \t\r\n");
  std::string out(s.substr(b, e - b + 1));
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::vector<AdverseEventSynonym> BuildSynonyms() {
  // MedDRA preferred terms (and common spellings) under their primary SOC.
  // Laboratory findings such as "alanine aminotransferase increased" and
  // "electrocardiogram QT prolonged" are primary to "Investigations" in MedDRA,
  // so they are listed there, not under the organ.
  const std::vector<std::pair<std::vector<std::string>, std::string>> groups = {
      {{"drug-induced liver injury", "dili", "hepatotoxicity", "hepatitis", "jaundice",
        "cholestasis", "hepatic failure"},
       "Hepatobiliary disorders"},
      {{"torsade de pointes", "long qt syndrome", "arrhythmia", "myocardial infarction",
        "cardiac failure", "heart failure", "cardiotoxicity"},
       "Cardiac disorders"},
      {{"acute kidney injury", "renal failure", "nephrotoxicity", "nephritis"},
       "Renal and urinary disorders"},
      {{"neutropenia", "anaemia", "anemia", "thrombocytopenia", "agranulocytosis", "leukopenia"},
       "Blood and lymphatic system disorders"},
      {{"rash", "stevens-johnson syndrome", "toxic epidermal necrolysis", "alopecia"},
       "Skin and subcutaneous tissue disorders"},
      {{"seizure", "convulsion", "peripheral neuropathy", "headache", "dizziness"},
       "Nervous system disorders"},
      {{"nausea", "vomiting", "diarrhoea", "diarrhea", "pancreatitis", "constipation"},
       "Gastrointestinal disorders"},
      {{"rhabdomyolysis", "myopathy", "myalgia", "osteoporosis"},
       "Musculoskeletal and connective tissue disorders"},
      {{"hypertension", "hypotension", "vasculitis"}, "Vascular disorders"},
      {{"hypothyroidism", "hyperthyroidism", "adrenal insufficiency"}, "Endocrine disorders"},
      {{"depression", "suicidal ideation", "insomnia", "anxiety"}, "Psychiatric disorders"},
      {{"teratogenicity", "congenital anomaly"}, "Congenital, familial and genetic disorders"},
      {{"interstitial lung disease", "bronchospasm", "pneumonitis", "dyspnoea", "dyspnea"},
       "Respiratory, thoracic and mediastinal disorders"},
      {{"anaphylactic reaction", "anaphylaxis", "hypersensitivity"}, "Immune system disorders"},
      {{"tinnitus", "deafness", "ototoxicity", "vertigo"}, "Ear and labyrinth disorders"},
      {{"hyperglycaemia", "hyperglycemia", "hypoglycaemia", "hypoglycemia", "hypokalaemia",
        "hypokalemia"},
       "Metabolism and nutrition disorders"},
      {{"alanine aminotransferase increased", "aspartate aminotransferase increased",
        "electrocardiogram qt prolonged", "blood creatinine increased"},
       "Investigations"},
      {{"cataract", "blurred vision", "vision blurred"}, "Eye disorders"},
      {{"fatigue", "pyrexia", "oedema peripheral", "edema peripheral", "injection site reaction"},
       "General disorders and administration site conditions"},
      {{"pneumonia", "sepsis", "herpes zoster"}, "Infections and infestations"},
  };
  std::vector<AdverseEventSynonym> out;
  for (const auto& [terms, organ_class] : groups) {
    for (const auto& term : terms) out.push_back({term, organ_class});
  }
  return out;
}

}  // namespace

const std::vector<OrganClass>& OrganClassTable() {
  static const std::vector<OrganClass> kTable = BuildTable();
  return kTable;
}

const std::vector<AdverseEventSynonym>& AdverseEventSynonyms() {
  static const std::vector<AdverseEventSynonym> kSynonyms = BuildSynonyms();
  return kSynonyms;
}

const OrganClass* FindOrganClass(std::string_view name) {
  const std::string key = Fold(name);
  if (key.empty()) return nullptr;
  for (const auto& row : OrganClassTable()) {
    if (Fold(row.name) == key) return &row;
  }
  return nullptr;
}

const OrganClass* OrganClassForTerm(std::string_view term) {
  if (const OrganClass* row = FindOrganClass(term)) return row;
  const std::string key = Fold(term);
  if (key.empty()) return nullptr;
  for (const auto& synonym : AdverseEventSynonyms()) {
    if (synonym.term == key) return FindOrganClass(synonym.organ_class);
  }
  return nullptr;
}

bool AssayBearsOn(const OrganClass& organ_class, std::string_view assay) {
  return std::any_of(organ_class.assay_prefixes.begin(), organ_class.assay_prefixes.end(),
                     [&](const std::string& prefix) { return assay.starts_with(prefix); });
}

}  // namespace fedrx::reverse
