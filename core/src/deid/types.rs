//! The FHIR R4 types of elements, for `nodesByType` and for knowing where a resource, a
//! free-text element or a reference is. A table of the resources the presets cover (Patient,
//! Encounter, Observation, Condition, MedicationRequest, DiagnosticReport, Practitioner,
//! Organization, Bundle) and the data types they use; elements it does not know have no type
//! (only name paths reach them, and the schema's default applies to the rest). Choice
//! elements (`value[x]`) take the type their name ends with (`valueQuantity`: Quantity).

use std::collections::HashMap;
use std::sync::OnceLock;

/// `Parent element:Type element:Type …`, one parent per line. Backbone elements are named
/// `Resource.element`. `Resource` and `DomainResource` elements belong to every resource,
/// `Element` elements to every data type.
const TABLE: &str = "
Resource id:id meta:Meta implicitRules:uri language:code
DomainResource text:Narrative contained:Resource extension:Extension modifierExtension:Extension
Element id:string extension:Extension modifierExtension:Extension
Meta versionId:id lastUpdated:instant source:uri profile:canonical security:Coding tag:Coding
Narrative status:code div:xhtml
Extension url:uri
Coding system:uri version:string code:code display:string userSelected:boolean
CodeableConcept coding:Coding text:string
Identifier use:code type:CodeableConcept system:uri value:string period:Period assigner:Reference
Reference reference:string type:uri identifier:Identifier display:string
Period start:dateTime end:dateTime
Quantity value:decimal comparator:code unit:string system:uri code:code
Age value:decimal comparator:code unit:string system:uri code:code
Duration value:decimal comparator:code unit:string system:uri code:code
SimpleQuantity value:decimal unit:string system:uri code:code
Range low:SimpleQuantity high:SimpleQuantity
Ratio numerator:Quantity denominator:Quantity
HumanName use:code text:string family:string given:string prefix:string suffix:string period:Period
ContactPoint system:code value:string use:code rank:positiveInt period:Period
Address use:code type:code text:string line:string city:string district:string state:string postalCode:string country:string period:Period
Attachment contentType:code language:code data:base64Binary url:url size:unsignedInt hash:base64Binary title:string creation:dateTime
Annotation author[x]:Reference,string time:dateTime text:markdown
SampledData origin:SimpleQuantity period:decimal factor:decimal lowerLimit:decimal upperLimit:decimal dimensions:positiveInt data:string
Timing event:dateTime repeat:Timing.repeat code:CodeableConcept
Timing.repeat bounds[x]:Duration,Range,Period count:positiveInt countMax:positiveInt duration:decimal durationMax:decimal durationUnit:code frequency:positiveInt frequencyMax:positiveInt period:decimal periodMax:decimal periodUnit:code dayOfWeek:code timeOfDay:time when:code offset:unsignedInt
Dosage sequence:integer text:string additionalInstruction:CodeableConcept patientInstruction:string timing:Timing asNeeded[x]:boolean,CodeableConcept site:CodeableConcept route:CodeableConcept method:CodeableConcept doseAndRate:Dosage.doseAndRate maxDosePerPeriod:Ratio maxDosePerAdministration:SimpleQuantity maxDosePerLifetime:SimpleQuantity
Dosage.doseAndRate type:CodeableConcept dose[x]:Range,SimpleQuantity rate[x]:Ratio,Range,SimpleQuantity
Patient identifier:Identifier active:boolean name:HumanName telecom:ContactPoint gender:code birthDate:date deceased[x]:boolean,dateTime address:Address maritalStatus:CodeableConcept multipleBirth[x]:boolean,integer photo:Attachment contact:Patient.contact communication:Patient.communication generalPractitioner:Reference managingOrganization:Reference link:Patient.link
Patient.contact relationship:CodeableConcept name:HumanName telecom:ContactPoint address:Address gender:code organization:Reference period:Period
Patient.communication language:CodeableConcept preferred:boolean
Patient.link other:Reference type:code
Practitioner identifier:Identifier active:boolean name:HumanName telecom:ContactPoint address:Address gender:code birthDate:date photo:Attachment qualification:Practitioner.qualification communication:CodeableConcept
Practitioner.qualification identifier:Identifier code:CodeableConcept period:Period issuer:Reference
Organization identifier:Identifier active:boolean type:CodeableConcept name:string alias:string telecom:ContactPoint address:Address partOf:Reference contact:Organization.contact endpoint:Reference
Organization.contact purpose:CodeableConcept name:HumanName telecom:ContactPoint address:Address
Encounter identifier:Identifier status:code statusHistory:Encounter.statusHistory class:Coding classHistory:Encounter.classHistory type:CodeableConcept serviceType:CodeableConcept priority:CodeableConcept subject:Reference episodeOfCare:Reference basedOn:Reference participant:Encounter.participant appointment:Reference period:Period length:Duration reasonCode:CodeableConcept reasonReference:Reference diagnosis:Encounter.diagnosis account:Reference hospitalization:Encounter.hospitalization location:Encounter.location serviceProvider:Reference partOf:Reference
Encounter.statusHistory status:code period:Period
Encounter.classHistory class:Coding period:Period
Encounter.participant type:CodeableConcept period:Period individual:Reference
Encounter.diagnosis condition:Reference use:CodeableConcept rank:positiveInt
Encounter.hospitalization preAdmissionIdentifier:Identifier origin:Reference admitSource:CodeableConcept reAdmission:CodeableConcept dietPreference:CodeableConcept specialCourtesy:CodeableConcept specialArrangement:CodeableConcept destination:Reference dischargeDisposition:CodeableConcept
Encounter.location location:Reference status:code physicalType:CodeableConcept period:Period
Observation identifier:Identifier basedOn:Reference partOf:Reference status:code category:CodeableConcept code:CodeableConcept subject:Reference focus:Reference encounter:Reference effective[x]:dateTime,Period,Timing,instant issued:instant performer:Reference value[x]:Quantity,CodeableConcept,string,boolean,integer,Range,Ratio,SampledData,time,dateTime,Period dataAbsentReason:CodeableConcept interpretation:CodeableConcept note:Annotation bodySite:CodeableConcept method:CodeableConcept specimen:Reference device:Reference referenceRange:Observation.referenceRange hasMember:Reference derivedFrom:Reference component:Observation.component
Observation.referenceRange low:SimpleQuantity high:SimpleQuantity type:CodeableConcept appliesTo:CodeableConcept age:Range text:string
Observation.component code:CodeableConcept value[x]:Quantity,CodeableConcept,string,boolean,integer,Range,Ratio,SampledData,time,dateTime,Period dataAbsentReason:CodeableConcept interpretation:CodeableConcept referenceRange:Observation.referenceRange
Condition identifier:Identifier clinicalStatus:CodeableConcept verificationStatus:CodeableConcept category:CodeableConcept severity:CodeableConcept code:CodeableConcept bodySite:CodeableConcept subject:Reference encounter:Reference onset[x]:dateTime,Age,Period,Range,string abatement[x]:dateTime,Age,Period,Range,string recordedDate:dateTime recorder:Reference asserter:Reference stage:Condition.stage evidence:Condition.evidence note:Annotation
Condition.stage summary:CodeableConcept assessment:Reference type:CodeableConcept
Condition.evidence code:CodeableConcept detail:Reference
MedicationRequest identifier:Identifier status:code statusReason:CodeableConcept intent:code category:CodeableConcept priority:code doNotPerform:boolean reported[x]:boolean,Reference medication[x]:CodeableConcept,Reference subject:Reference encounter:Reference supportingInformation:Reference authoredOn:dateTime requester:Reference performer:Reference performerType:CodeableConcept recorder:Reference reasonCode:CodeableConcept reasonReference:Reference instantiatesCanonical:canonical instantiatesUri:uri basedOn:Reference groupIdentifier:Identifier courseOfTherapyType:CodeableConcept insurance:Reference note:Annotation dosageInstruction:Dosage dispenseRequest:MedicationRequest.dispenseRequest substitution:MedicationRequest.substitution priorPrescription:Reference detectedIssue:Reference eventHistory:Reference
MedicationRequest.dispenseRequest initialFill:MedicationRequest.dispenseRequest.initialFill dispenseInterval:Duration validityPeriod:Period numberOfRepeatsAllowed:unsignedInt quantity:SimpleQuantity expectedSupplyDuration:Duration performer:Reference
MedicationRequest.dispenseRequest.initialFill quantity:SimpleQuantity duration:Duration
MedicationRequest.substitution allowed[x]:boolean,CodeableConcept reason:CodeableConcept
DiagnosticReport identifier:Identifier basedOn:Reference status:code category:CodeableConcept code:CodeableConcept subject:Reference encounter:Reference effective[x]:dateTime,Period issued:instant performer:Reference resultsInterpreter:Reference specimen:Reference result:Reference imagingStudy:Reference media:DiagnosticReport.media conclusion:string conclusionCode:CodeableConcept presentedForm:Attachment
DiagnosticReport.media comment:string link:Reference
Bundle identifier:Identifier type:code timestamp:instant total:unsignedInt link:Bundle.link entry:Bundle.entry signature:Signature
Bundle.link relation:string url:uri
Bundle.entry link:Bundle.link fullUrl:uri resource:Resource search:Bundle.entry.search request:Bundle.entry.request response:Bundle.entry.response
Bundle.entry.search mode:code score:decimal
Bundle.entry.request method:code url:uri ifNoneMatch:string ifModifiedSince:instant ifMatch:string ifNoneExist:string
Bundle.entry.response status:string location:uri etag:string lastModified:instant outcome:Resource
";

/// Resource types whose elements the table lists (others get `Resource` elements only).
const RESOURCES: &[&str] = &[
    "Patient",
    "Practitioner",
    "Organization",
    "Encounter",
    "Observation",
    "Condition",
    "MedicationRequest",
    "DiagnosticReport",
    "Bundle",
];

type Table = HashMap<(&'static str, &'static str), &'static str>;

fn table() -> &'static Table {
    static T: OnceLock<Table> = OnceLock::new();
    T.get_or_init(|| {
        let mut t = Table::new();
        for line in TABLE.lines().filter(|l| !l.trim().is_empty()) {
            let mut words = line.split_whitespace();
            let Some(parent) = words.next() else { continue };
            for w in words {
                let Some((name, types)) = w.split_once(':') else {
                    continue;
                };
                // Choice elements (`value[x]`) are typed by their suffix (`choice_type`);
                // the table lists them for the reader.
                if !name.ends_with("[x]") {
                    t.insert((parent, name), types);
                }
            }
        }
        t
    })
}

/// Whether `name` is a resource type the table describes.
pub(crate) fn is_known_resource(name: &str) -> bool {
    RESOURCES.contains(&name)
}

/// Types that are data types, not primitives: the parents `Element` applies to.
fn is_complex(t: &str) -> bool {
    t.as_bytes().first().is_some_and(u8::is_ascii_uppercase) || t.contains('.')
}

/// The type a choice element's name gives (`valueQuantity` → `Quantity`, `onsetDateTime` →
/// `dateTime`), if its suffix is a type name.
fn choice_type(name: &str) -> Option<&'static str> {
    const SUFFIXES: &[(&str, &str)] = &[
        ("DateTime", "dateTime"),
        ("Date", "date"),
        ("Instant", "instant"),
        ("Time", "time"),
        ("Period", "Period"),
        ("Quantity", "Quantity"),
        ("Age", "Age"),
        ("Duration", "Duration"),
        ("Range", "Range"),
        ("Ratio", "Ratio"),
        ("String", "string"),
        ("Markdown", "markdown"),
        ("Boolean", "boolean"),
        ("Integer", "integer"),
        ("Decimal", "decimal"),
        ("Uri", "uri"),
        ("Url", "url"),
        ("Code", "code"),
        ("CodeableConcept", "CodeableConcept"),
        ("Coding", "Coding"),
        ("Reference", "Reference"),
        ("Identifier", "Identifier"),
        ("HumanName", "HumanName"),
        ("Address", "Address"),
        ("ContactPoint", "ContactPoint"),
        ("Attachment", "Attachment"),
        ("Annotation", "Annotation"),
        ("Timing", "Timing"),
        ("SampledData", "SampledData"),
        ("Base64Binary", "base64Binary"),
    ];
    super::path::CHOICE_PREFIXES
        .iter()
        .filter(|p| super::path::name_matches(p, name) && name.len() > p.len())
        .find_map(|p| {
            let suffix = &name[p.len()..];
            SUFFIXES.iter().find(|(s, _)| *s == suffix).map(|(_, t)| *t)
        })
}

/// The type of element `name` of a node of type `parent` (`None`: unknown).
pub(crate) fn child_type(parent: Option<&str>, name: &str) -> Option<&'static str> {
    let parent = parent?;
    let t = table();
    if let Some(ty) = t.get(&(parent, name)) {
        return Some(ty);
    }
    if let Some(ty) = choice_type(name) {
        return Some(ty);
    }
    if is_known_resource(parent) || parent == "Resource" {
        return t
            .get(&("DomainResource", name))
            .or_else(|| t.get(&("Resource", name)))
            .copied();
    }
    if is_complex(parent) {
        return t.get(&("Element", name)).copied();
    }
    None
}

/// The type of the root of a resource of type `resource_type`: the type itself (resources the
/// table does not describe still have the `Resource` elements).
pub(crate) fn resource_root(resource_type: &str) -> &str {
    if is_known_resource(resource_type) {
        resource_type
    } else {
        "Resource"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_of_elements() {
        assert_eq!(child_type(Some("Patient"), "name"), Some("HumanName"));
        assert_eq!(child_type(Some("Patient"), "birthDate"), Some("date"));
        assert_eq!(child_type(Some("Patient"), "text"), Some("Narrative"));
        assert_eq!(child_type(Some("Patient"), "id"), Some("id"));
        assert_eq!(
            child_type(Some("Observation"), "effectiveDateTime"),
            Some("dateTime")
        );
        assert_eq!(child_type(Some("Condition"), "onsetAge"), Some("Age"));
        assert_eq!(child_type(Some("Period"), "start"), Some("dateTime"));
        assert_eq!(
            child_type(Some("HumanName"), "extension"),
            Some("Extension")
        );
        assert_eq!(
            child_type(Some("Extension"), "valueAddress"),
            Some("Address")
        );
        assert_eq!(child_type(Some("Resource"), "meta"), Some("Meta"));
        assert_eq!(child_type(Some("Patient"), "nonsense"), None);
        assert_eq!(child_type(None, "name"), None);
        assert_eq!(child_type(Some("string"), "extension"), None);
        assert_eq!(
            child_type(Some("Bundle.entry"), "resource"),
            Some("Resource")
        );
        assert_eq!(resource_root("Specimen"), "Resource");
    }
}
