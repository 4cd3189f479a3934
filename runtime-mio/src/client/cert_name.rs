//! The common name of a client certificate's subject: etcd takes it as the user of a call that
//! carries no token (`--client-cert-auth`). rustls has verified the certificate; this only
//! reads its subject, walking the DER far enough to find the CN, and gives up (`None`) on
//! anything it does not expect.

/// `id-at-commonName`, 2.5.4.3.
const COMMON_NAME_OID: &[u8] = &[0x55, 0x04, 0x03];

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const OID: u8 = 0x06;
/// `[0] EXPLICIT`: the certificate's version.
const VERSION_TAG: u8 = 0xa0;

/// One DER element: its tag, its contents, and what follows it.
pub(crate) fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return None;
        }
        let len = rest[..count]
            .iter()
            .fold(0usize, |len, byte| (len << 8) | usize::from(*byte));
        (len, &rest[count..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

fn expect(der: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, contents, rest) = element(der)?;
    (found == tag).then_some((contents, rest))
}

/// The subject's common name (the last one, as Go's `Subject.CommonName` has it), if the
/// certificate has one that is UTF-8.
pub(crate) fn common_name(certificate: &[u8]) -> Option<String> {
    let (certificate, _) = expect(certificate, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    if rest.first() == Some(&VERSION_TAG) {
        rest = element(rest)?.2;
    }
    // serialNumber, signature, issuer, validity: then the subject.
    for _ in 0..4 {
        rest = element(rest)?.2;
    }
    let (subject, _) = expect(rest, SEQUENCE)?;
    let mut names = subject;
    let mut found = None;
    while !names.is_empty() {
        let (set, next) = expect(names, SET)?;
        names = next;
        let mut attributes = set;
        while !attributes.is_empty() {
            let (attribute, next) = expect(attributes, SEQUENCE)?;
            attributes = next;
            let (oid, value) = expect(attribute, OID)?;
            if oid == COMMON_NAME_OID {
                let (_, text, _) = element(value)?;
                found = Some(String::from_utf8(text.to_vec()).ok()?);
            }
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate_for(common_name: Option<&str>) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).expect("params");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "tally tests");
        if let Some(name) = common_name {
            params
                .distinguished_name
                .push(rcgen::DnType::CommonName, name);
        }
        let key = rcgen::KeyPair::generate().expect("key");
        params
            .self_signed(&key)
            .expect("certificate")
            .der()
            .to_vec()
    }

    #[test]
    fn the_subjects_common_name_is_read_and_its_absence_too() {
        assert_eq!(
            common_name(&certificate_for(Some("alice"))),
            Some("alice".to_string())
        );
        assert_eq!(common_name(&certificate_for(None)), None);
    }

    #[test]
    fn damaged_certificates_give_no_name_and_no_panic() {
        let good = certificate_for(Some("alice"));
        for cut in 0..good.len() {
            let _ = common_name(&good[..cut]);
        }
        let mut flipped = good.clone();
        for at in (0..flipped.len()).step_by(7) {
            flipped[at] ^= 0xff;
            let _ = common_name(&flipped);
            flipped[at] ^= 0xff;
        }
        assert_eq!(common_name(&[]), None);
        assert_eq!(common_name(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
    }
}
