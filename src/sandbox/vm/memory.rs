//! Guest physical memory: one anonymous mapping from address 0, registered
//! with KVM as slot 0, and the fixed layout of what the VMM puts in it.
//!
//! The layout follows the usual x86 PC conventions (and Firecracker's
//! `arch/x86_64/layout.rs`): everything the VMM writes for boot lives in
//! the first MiB, below the EBDA; the kernel loads at 1 MiB; the
//! initramfs goes at the top of RAM.

use kvm_bindings::kvm_userspace_memory_region;
use kvm_ioctls::VmFd;
use vm_memory::{GuestAddress, GuestMemory, GuestMemoryMmap, GuestMemoryRegion};

/// Global descriptor table.
pub const GDT_START: u64 = 0x500;
/// An empty IDT: the guest must not take exceptions before it loads its own.
pub const IDT_START: u64 = 0x520;
/// The "zero page": struct boot_params.
pub const ZERO_PAGE_START: u64 = 0x7000;
/// Initial stack pointer (grows down, below the page tables).
pub const BOOT_STACK_POINTER: u64 = 0x8ff0;
/// Identity page tables: PML4, one PDPT and four PDs (2 MiB pages, 4 GiB).
pub const PML4_START: u64 = 0x9000;
pub const PDPTE_START: u64 = 0xa000;
pub const PDE_START: u64 = 0xb000;
pub const CMDLINE_START: u64 = 0x20000;
pub const CMDLINE_MAX_SIZE: usize = 4096;
/// Start of the Extended BIOS Data Area: low RAM ends here in the e820 map.
pub const EBDA_START: u64 = 0x9fc00;
/// Where the kernel's protected-mode part is loaded.
pub const HIMEM_START: u64 = 0x10_0000;
/// Above this the PC puts MMIO (PCI hole, IOAPIC, LAPIC); RAM stays below,
/// so one region and one e820 entry suffice.
pub const MMIO_GAP_START: u64 = 0xc000_0000;

pub const MIN_MEMORY_MIB: u64 = 8;
pub const MAX_MEMORY_MIB: u64 = MMIO_GAP_START >> 20;

#[derive(Debug, thiserror::Error)]
pub enum MemoryError {
    #[error("guest memory: {0} MiB is out of range ({MIN_MEMORY_MIB}..={MAX_MEMORY_MIB} MiB)")]
    Size(u64),
    #[error("guest memory: mapping {mib} MiB: {source}")]
    Mmap {
        mib: u64,
        source: vm_memory::mmap::Error,
    },
    #[error("guest memory: KVM_SET_USER_MEMORY_REGION: {0}")]
    Register(kvm_ioctls::Error),
}

/// Maps `mib` MiB of guest RAM at guest address 0 and hands it to KVM.
pub fn create(vm: &VmFd, mib: u64) -> Result<GuestMemoryMmap, MemoryError> {
    if !(MIN_MEMORY_MIB..=MAX_MEMORY_MIB).contains(&mib) {
        return Err(MemoryError::Size(mib));
    }
    let mem = GuestMemoryMmap::<()>::from_ranges(&[(GuestAddress(0), (mib << 20) as usize)])
        .map_err(|source| MemoryError::Mmap { mib, source })?;
    for (slot, region) in mem.iter().enumerate() {
        let r = kvm_userspace_memory_region {
            slot: slot as u32,
            flags: 0,
            guest_phys_addr: region.start_addr().0,
            memory_size: region.len(),
            userspace_addr: region.as_ptr() as u64,
        };
        // SAFETY: the mapping lives in `mem`, which the Vm keeps for as long
        // as the VM fd exists (fields drop in order: vcpu, vm, then memory).
        unsafe { vm.set_user_memory_region(r) }.map_err(MemoryError::Register)?;
    }
    Ok(mem)
}

/// End of RAM (exclusive).
pub fn ram_end(mem: &GuestMemoryMmap) -> u64 {
    mem.last_addr().0 + 1
}
