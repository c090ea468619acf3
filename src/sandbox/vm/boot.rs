//! Loading a bzImage and entering it by the Linux 64-bit boot protocol
//! (Documentation/arch/x86/boot.rst, "64-bit BOOT PROTOCOL"): the VMM does
//! what a bootloader and the kernel's own setup code would, so the vCPU
//! starts in long mode at the kernel's 64-bit entry with RSI pointing at
//! boot_params.

use super::memory::*;
use kvm_bindings::{kvm_fpu, kvm_regs, kvm_segment, kvm_sregs, CpuId};
use kvm_ioctls::VcpuFd;
use linux_loader::bootparam::{boot_e820_entry, boot_params};
use linux_loader::loader::{bzimage::BzImage, KernelLoader};
use std::fs::File;
use std::path::{Path, PathBuf};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap};

/// boot.rst: "HdrS" at 0x202, the boot flag, and 0xff for a loader
/// without an assigned id.
const HDR_MAGIC: u32 = 0x5372_6448;
const BOOT_FLAG: u16 = 0xaa55;
const LOADER_UNDEFINED: u8 = 0xff;
/// The 64-bit entry is 0x200 past the start of the protected-mode code.
const ENTRY_64_OFFSET: u64 = 0x200;
/// xloadflags bit 0: the kernel has a 64-bit entry point.
const XLF_KERNEL_64: u16 = 1;
const E820_RAM: u32 = 1;

// Control register and EFER bits.
const CR0_PE: u64 = 1;
const CR0_ET: u64 = 1 << 4;
const CR0_PG: u64 = 1 << 31;
const CR4_PAE: u64 = 1 << 5;
const EFER_LME: u64 = 1 << 8;
const EFER_LMA: u64 = 1 << 10;

#[derive(Debug, thiserror::Error)]
pub enum BootError {
    #[error("kernel {path}: {source}")]
    OpenKernel {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("kernel {path}: not a loadable bzImage: {source}")]
    LoadKernel {
        path: PathBuf,
        source: linux_loader::loader::Error,
    },
    #[error("kernel {path}: no 64-bit entry point (xloadflags lacks XLF_KERNEL_64)")]
    Not64Bit { path: PathBuf },
    #[error("initramfs {path}: {source}")]
    ReadInitramfs {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("initramfs {path}: {size} bytes do not fit in guest memory above the kernel")]
    InitramfsTooLarge { path: PathBuf, size: u64 },
    #[error("kernel command line: {len} bytes exceed the {max}-byte limit")]
    CmdlineTooLong { len: usize, max: usize },
    #[error("kernel command line contains a NUL byte")]
    CmdlineNul,
    #[error("writing boot structures to guest memory: {0}")]
    GuestMemory(#[from] vm_memory::GuestMemoryError),
    #[error("vCPU setup, {what}: {source}")]
    Vcpu {
        what: &'static str,
        source: kvm_ioctls::Error,
    },
}

type Result<T> = std::result::Result<T, BootError>;

/// Where things landed; the vCPU registers are derived from it.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    pub entry: u64,
    pub initramfs: Option<(u64, u64)>,
}

/// Loads kernel, initramfs and command line into guest memory and writes
/// boot_params (the "zero page").
pub fn load(
    mem: &GuestMemoryMmap,
    kernel: &Path,
    initramfs: Option<&Path>,
    cmdline: &str,
) -> Result<Loaded> {
    let mut f = File::open(kernel).map_err(|source| BootError::OpenKernel {
        path: kernel.into(),
        source,
    })?;
    let res = BzImage::load(
        mem,
        Some(GuestAddress(HIMEM_START)),
        &mut f,
        Some(GuestAddress(HIMEM_START)),
    )
    .map_err(|source| BootError::LoadKernel {
        path: kernel.into(),
        source,
    })?;
    let mut hdr = res
        .setup_header
        .expect("the bzImage loader always returns the setup header");
    if hdr.version < 0x020c || hdr.xloadflags & XLF_KERNEL_64 == 0 {
        return Err(BootError::Not64Bit {
            path: kernel.into(),
        });
    }

    let cmd = cmdline.as_bytes();
    if cmd.contains(&0) {
        return Err(BootError::CmdlineNul);
    }
    if cmd.len() + 1 > CMDLINE_MAX_SIZE {
        return Err(BootError::CmdlineTooLong {
            len: cmd.len(),
            max: CMDLINE_MAX_SIZE - 1,
        });
    }
    mem.write_slice(cmd, GuestAddress(CMDLINE_START))?;
    mem.write_slice(&[0], GuestAddress(CMDLINE_START + cmd.len() as u64))?;

    let initrd = match initramfs {
        Some(p) => Some(load_initramfs(mem, p, res.kernel_end, hdr.initrd_addr_max)?),
        None => None,
    };

    hdr.type_of_loader = LOADER_UNDEFINED;
    hdr.boot_flag = BOOT_FLAG;
    hdr.header = HDR_MAGIC;
    hdr.cmd_line_ptr = CMDLINE_START as u32;
    hdr.cmdline_size = cmd.len() as u32;
    if let Some((addr, size)) = initrd {
        hdr.ramdisk_image = addr as u32;
        hdr.ramdisk_size = size as u32;
    }
    let mut params = boot_params {
        hdr,
        ..Default::default()
    };
    let e820 = [(0, EBDA_START), (HIMEM_START, ram_end(mem) - HIMEM_START)];
    for (i, &(addr, size)) in e820.iter().enumerate() {
        params.e820_table[i] = boot_e820_entry {
            addr,
            size,
            type_: E820_RAM,
        };
    }
    params.e820_entries = e820.len() as u8;
    mem.write_obj(params, GuestAddress(ZERO_PAGE_START))?;
    Ok(Loaded {
        entry: res.kernel_load.raw_value() + ENTRY_64_OFFSET,
        initramfs: initrd,
    })
}

/// The initramfs goes at the top of RAM (page aligned, below the kernel's
/// initrd_addr_max), as bootloaders do, leaving room to decompress the kernel.
fn load_initramfs(
    mem: &GuestMemoryMmap,
    path: &Path,
    kernel_end: u64,
    addr_max: u32,
) -> Result<(u64, u64)> {
    let data = std::fs::read(path).map_err(|source| BootError::ReadInitramfs {
        path: path.into(),
        source,
    })?;
    let size = data.len() as u64;
    let top = ram_end(mem).min(addr_max as u64 + 1);
    let addr = top
        .checked_sub(size)
        .map(|a| a & !0xfff)
        .filter(|&a| a >= kernel_end);
    let addr = addr.ok_or(BootError::InitramfsTooLarge {
        path: path.into(),
        size,
    })?;
    mem.write_slice(&data, GuestAddress(addr))?;
    Ok((addr, size))
}

/// GDT entry from flags, base and limit (the packed x86 layout).
fn gdt_entry(flags: u16, base: u32, limit: u32) -> u64 {
    ((base as u64 & 0xff00_0000) << 32)
        | ((base as u64 & 0x00ff_ffff) << 16)
        | (limit as u64 & 0x0000_ffff)
        | ((limit as u64 & 0x000f_0000) << 32)
        | ((flags as u64 & 0xf0ff) << 40)
}

/// The kvm_segment KVM wants for the same descriptor.
fn segment(entry: u64, index: u16) -> kvm_segment {
    let bit = |n: u32| ((entry >> n) & 1) as u8;
    let g = bit(55);
    let raw_limit = ((entry & 0xffff) | ((entry >> 32) & 0xf_0000)) as u32;
    kvm_segment {
        base: ((entry >> 16) & 0xff_ffff) | ((entry >> 32) & 0xff00_0000),
        limit: if g == 1 {
            (raw_limit << 12) | 0xfff
        } else {
            raw_limit
        },
        selector: index * 8,
        type_: ((entry >> 40) & 0xf) as u8,
        present: bit(47),
        dpl: ((entry >> 45) & 3) as u8,
        db: bit(54),
        s: bit(44),
        l: bit(53),
        g,
        avl: bit(52),
        unusable: if bit(47) == 0 { 1 } else { 0 },
        padding: 0,
    }
}

/// Boot GDT: the protocol wants __BOOT_CS = 0x10 and __BOOT_DS = 0x18,
/// flat 4 GiB; a TSS follows because VMX refuses to enter without a usable TR.
const GDT: [(u16, u32, u32); 5] = [
    (0, 0, 0),
    (0, 0, 0),
    (0xa09b, 0, 0xfffff), // 0x10: code, 64-bit (L), present, exec/read, accessed
    (0xc093, 0, 0xfffff), // 0x18: data, 32-bit (D/B), present, read/write, accessed
    (0x808b, 0, 0xfffff), // 0x20: TSS, busy
];

/// Long mode, paging on, the identity map, the boot segments; then the
/// general registers of the protocol: RIP at the 64-bit entry, RSI at
/// boot_params.
pub fn setup_vcpu(mem: &GuestMemoryMmap, vcpu: &VcpuFd, loaded: &Loaded) -> Result<()> {
    let kvm_err = |what| move |source| BootError::Vcpu { what, source };
    for (i, &(flags, base, limit)) in GDT.iter().enumerate() {
        mem.write_obj(
            gdt_entry(flags, base, limit),
            GuestAddress(GDT_START + i as u64 * 8),
        )?;
    }
    mem.write_obj(0u64, GuestAddress(IDT_START))?;
    write_page_tables(mem)?;

    let mut sregs: kvm_sregs = vcpu.get_sregs().map_err(kvm_err("KVM_GET_SREGS"))?;
    let code = segment(gdt_entry(GDT[2].0, GDT[2].1, GDT[2].2), 2);
    let data = segment(gdt_entry(GDT[3].0, GDT[3].1, GDT[3].2), 3);
    sregs.cs = code;
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.tr = segment(gdt_entry(GDT[4].0, GDT[4].1, GDT[4].2), 4);
    sregs.gdt.base = GDT_START;
    sregs.gdt.limit = (GDT.len() * 8 - 1) as u16;
    sregs.idt.base = IDT_START;
    sregs.idt.limit = 7;
    sregs.cr3 = PML4_START;
    sregs.cr4 |= CR4_PAE;
    sregs.cr0 |= CR0_PE | CR0_PG | CR0_ET;
    sregs.efer |= EFER_LME | EFER_LMA;
    vcpu.set_sregs(&sregs).map_err(kvm_err("KVM_SET_SREGS"))?;

    let regs = kvm_regs {
        rflags: 0x2, // bit 1 is reserved and must be set
        rip: loaded.entry,
        rsp: BOOT_STACK_POINTER,
        rbp: BOOT_STACK_POINTER,
        rsi: ZERO_PAGE_START,
        ..Default::default()
    };
    vcpu.set_regs(&regs).map_err(kvm_err("KVM_SET_REGS"))?;

    // x87 and SSE in their reset state (control word, MXCSR), as after FNINIT.
    let fpu = kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    };
    vcpu.set_fpu(&fpu).map_err(kvm_err("KVM_SET_FPU"))?;
    Ok(())
}

/// 4 GiB identity-mapped with 2 MiB pages: enough for the kernel, the
/// boot structures and an initramfs anywhere in RAM (below the MMIO gap).
fn write_page_tables(mem: &GuestMemoryMmap) -> Result<()> {
    const PRESENT_RW: u64 = 0x3;
    const PAGE_SIZE_2M: u64 = 0x80;
    mem.write_obj(PDPTE_START | PRESENT_RW, GuestAddress(PML4_START))?;
    for pd in 0..4u64 {
        let pd_addr = PDE_START + pd * 0x1000;
        mem.write_obj(pd_addr | PRESENT_RW, GuestAddress(PDPTE_START + pd * 8))?;
        for i in 0..512u64 {
            let phys = ((pd << 9) + i) << 21;
            mem.write_obj(
                phys | PRESENT_RW | PAGE_SIZE_2M,
                GuestAddress(pd_addr + i * 8),
            )?;
        }
    }
    Ok(())
}

/// What KVM supports, as the guest's CPUID, with the topology of one CPU.
/// The KVM paravirtual leaves (0x4000_0000..) stay, so Linux uses kvm-clock.
pub fn setup_cpuid(vcpu: &VcpuFd, mut cpuid: CpuId) -> Result<()> {
    for e in cpuid.as_mut_slice() {
        match e.function {
            // Initial APIC id 0, one logical processor.
            1 => e.ebx = (e.ebx & 0x0000_ffff) | (1 << 16),
            // x2APIC topology: id 0.
            0xb | 0x1f => e.edx = 0,
            _ => {}
        }
    }
    vcpu.set_cpuid2(&cpuid).map_err(|source| BootError::Vcpu {
        what: "KVM_SET_CPUID2",
        source,
    })
}

/// With the in-kernel irqchip, PIC interrupts reach the CPU only through
/// the local APIC's LINT0 in ExtINT mode (virtual wire); LINT1 carries NMI.
pub fn setup_lapic(vcpu: &VcpuFd) -> Result<()> {
    const LVT_LINT0: usize = 0x350;
    const LVT_LINT1: usize = 0x360;
    const MODE_EXTINT: u32 = 0x7;
    const MODE_NMI: u32 = 0x4;
    let mut lapic = vcpu.get_lapic().map_err(|source| BootError::Vcpu {
        what: "KVM_GET_LAPIC",
        source,
    })?;
    for (off, mode) in [(LVT_LINT0, MODE_EXTINT), (LVT_LINT1, MODE_NMI)] {
        let regs = lapic.regs.as_mut_slice();
        let mut b = [0u8; 4];
        for (i, x) in b.iter_mut().enumerate() {
            *x = regs[off + i] as u8;
        }
        let v = u32::from_le_bytes(b);
        // Delivery mode is bits 8..10; clearing bit 16 unmasks.
        let v = (v & !0x0001_0700) | (mode << 8);
        for (i, x) in v.to_le_bytes().iter().enumerate() {
            regs[off + i] = *x as _;
        }
    }
    vcpu.set_lapic(&lapic).map_err(|source| BootError::Vcpu {
        what: "KVM_SET_LAPIC",
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gdt_round_trips_to_kvm_segments() {
        let code = segment(gdt_entry(0xa09b, 0, 0xfffff), 2);
        assert_eq!(
            (
                code.selector,
                code.l,
                code.db,
                code.g,
                code.present,
                code.type_
            ),
            (0x10, 1, 0, 1, 1, 0xb)
        );
        assert_eq!((code.base, code.limit), (0, 0xffff_ffff));
        let data = segment(gdt_entry(0xc093, 0, 0xfffff), 3);
        assert_eq!(
            (data.selector, data.l, data.db, data.s, data.type_),
            (0x18, 0, 1, 1, 3)
        );
        assert_eq!(segment(0, 0).unusable, 1);
    }

    #[test]
    fn boot_params_is_the_zero_page() {
        // The kernel reads boot_params as one 4 KiB page.
        assert_eq!(std::mem::size_of::<boot_params>(), 4096);
    }
}
