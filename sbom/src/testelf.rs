//! Test helper: a minimal 64-bit little-endian ELF executable with the
//! given sections (no program headers, no symbols), enough for `object`.

/// One section: name, virtual address, contents.
pub(crate) struct Section<'a> {
    name: &'a str,
    addr: u64,
    data: &'a [u8],
}

impl<'a> Section<'a> {
    pub(crate) fn new(name: &'a str, addr: u64, data: &'a [u8]) -> Self {
        Section { name, addr, data }
    }
}

/// The ELF file: header, section contents (16-byte aligned), the section
/// name table, then the section header table.
pub(crate) fn elf(sections: &[Section<'_>]) -> Vec<u8> {
    let mut out = vec![0u8; 64];
    let align = |out: &mut Vec<u8>| {
        while !out.len().is_multiple_of(16) {
            out.push(0);
        }
    };
    let mut shstrtab = vec![0u8];
    let mut headers = vec![[0u8; 64]];
    for s in sections {
        align(&mut out);
        let name_at = shstrtab.len() as u32;
        shstrtab.extend(s.name.as_bytes());
        shstrtab.push(0);
        headers.push(section_header(
            name_at,
            1,
            2,
            s.addr,
            out.len() as u64,
            s.data.len() as u64,
        ));
        out.extend(s.data);
    }
    let name_at = shstrtab.len() as u32;
    shstrtab.extend(b".shstrtab\0");
    align(&mut out);
    headers.push(section_header(
        name_at,
        3,
        0,
        0,
        out.len() as u64,
        shstrtab.len() as u64,
    ));
    out.extend(&shstrtab);
    align(&mut out);
    let shoff = out.len() as u64;
    for h in &headers {
        out.extend(h);
    }
    let shnum = headers.len() as u16;
    let mut h = Vec::with_capacity(64);
    h.extend(b"\x7fELF\x02\x01\x01\x00");
    h.extend([0u8; 8]);
    h.extend(2u16.to_le_bytes()); // ET_EXEC
    h.extend(62u16.to_le_bytes()); // x86-64
    h.extend(1u32.to_le_bytes());
    h.extend(0u64.to_le_bytes()); // entry
    h.extend(0u64.to_le_bytes()); // phoff
    h.extend(shoff.to_le_bytes());
    h.extend(0u32.to_le_bytes()); // flags
    h.extend(64u16.to_le_bytes()); // ehsize
    h.extend(56u16.to_le_bytes()); // phentsize
    h.extend(0u16.to_le_bytes()); // phnum
    h.extend(64u16.to_le_bytes()); // shentsize
    h.extend(shnum.to_le_bytes());
    h.extend((shnum - 1).to_le_bytes()); // shstrndx
    out[..64].copy_from_slice(&h);
    out
}

fn section_header(name: u32, ty: u32, flags: u64, addr: u64, offset: u64, size: u64) -> [u8; 64] {
    let mut h = Vec::with_capacity(64);
    h.extend(name.to_le_bytes());
    h.extend(ty.to_le_bytes());
    h.extend(flags.to_le_bytes());
    h.extend(addr.to_le_bytes());
    h.extend(offset.to_le_bytes());
    h.extend(size.to_le_bytes());
    h.extend(0u32.to_le_bytes()); // link
    h.extend(0u32.to_le_bytes()); // info
    h.extend(16u64.to_le_bytes()); // addralign
    h.extend(0u64.to_le_bytes()); // entsize
    h.try_into().unwrap()
}

#[test]
fn object_reads_it() {
    use object::{Object, ObjectSection};
    let bytes = elf(&[
        Section::new(".a", 0x1000, b"hello"),
        Section::new(".b", 0x2000, b""),
    ]);
    let f = object::File::parse(&*bytes).unwrap();
    let a = f.section_by_name(".a").unwrap();
    assert_eq!(a.address(), 0x1000);
    assert_eq!(a.data().unwrap(), b"hello");
}
