/*
 * husk's VMM test guest: a minimal bzImage that enters by the Linux 64-bit
 * boot protocol, so the VMM loads it exactly as it loads a real kernel.
 *
 * It echoes what the VMM gave it on COM1 (boot_params address, the e820
 * map, the command line, the initramfs and its newc magic), then speaks the
 * minimum of the agent protocol on COM2 (see src/sandbox/vm/channel.rs),
 * receiving by interrupt (IRQ 3 through the 8259 PIC):
 *   -> Ready{version 1}
 *   <- Start            (any frame of type 2 with a valid CRC)
 *   -> Started{0, pid 1}, Exited{0, Code(N)}   N from "testguest.exit=N"
 * and resets through the i8042 (0xfe to port 0x64).
 *
 * "testguest.mode=silent" never sends Ready; "testguest.mode=badinsn" does
 * an SSE add on MMIO, which KVM's instruction emulator cannot do.
 * "testguest.mode=wait" keeps the main process "running" after Started,
 * so the VMM's relays can be driven (Signal, Stdin, CloseStdin for other
 * ids are ignored):
 *   <- Signal{0, sig}   -> Exited{0, Signal(sig)}, reset
 *   <- Stdin{0, data}   -> Stdout{0, data}          (an echo)
 *   <- CloseStdin{0}    -> Exited{0, Code(N)}, reset
 *   <- Exec{id, ...}    -> Started{id, 2}, Stdout{id, "exec ok\n"}, Exited{id, Code(3)}
 *
 * Registers: rdi, rsi, rax, rcx, rdx, r8-r11 are scratch; rbx, rbp,
 * r12-r15 are preserved by the helpers.
 */
        .intel_syntax noprefix

        .set COM1, 0x3f8
        .set COM2, 0x2f8
        .set BOOT_PARAMS_E820_ENTRIES, 0x1e8
        .set BOOT_PARAMS_E820_TABLE, 0x2d0
        .set HDR_RAMDISK_IMAGE, 0x218
        .set HDR_RAMDISK_SIZE, 0x21c
        .set HDR_CMD_LINE_PTR, 0x228
        /* Scratch memory above the image (the VMM gives at least 8 MiB). */
        .set IDT, 0x200000
        .set RXBUF, 0x201000
        .set RXBUF_SIZE, 0x1000
        .set RXLEN, 0x202000
        .set RXPOS, 0x202008            /* wait mode: frames consumed up to here */
        .set TXBUF, 0x203000
        .set MMIO_HOLE, 0xd0000000

/* ---- the setup area: boot sector and setup header (boot.rst) ---- */
        .section .setup, "a"
        .org 0x1f1
setup_sects:    .byte 1                 /* setup is (1+1)*512 bytes */
root_flags:     .word 0
syssize:        .long 0
ram_size:       .word 0
vid_mode:       .word 0
root_dev:       .word 0
boot_flag:      .word 0xaa55
jump:           .byte 0xeb, 0x66        /* jmp over the header (unused) */
header:         .ascii "HdrS"
version:        .word 0x020f            /* boot protocol 2.15 */
realmode_swtch: .long 0
start_sys_seg:  .word 0
kernel_version: .word 0
type_of_loader: .byte 0
loadflags:      .byte 0x01              /* LOADED_HIGH: protected mode at 1 MiB */
setup_move_size:.word 0
code32_start:   .long 0x100000
ramdisk_image:  .long 0
ramdisk_size:   .long 0
bootsect_kludge:.long 0
heap_end_ptr:   .word 0
ext_loader_ver: .byte 0
ext_loader_type:.byte 0
cmd_line_ptr:   .long 0
initrd_addr_max:.long 0x7fffffff
kernel_alignment:.long 0x200000
relocatable:    .byte 0
min_alignment:  .byte 0
xloadflags:     .word 0x0001            /* XLF_KERNEL_64: 64-bit entry at +0x200 */
cmdline_size:   .long 4095
        .org 0x400

/* ---- the "kernel", loaded at 1 MiB ---- */
        .text
        .code64
entry32:                                /* 0x100000: 32-bit entry, not used */
        hlt
        jmp entry32

        .org 0x200
        .globl entry64
entry64:                                /* 0x100200: RSI = &boot_params */
        mov r15, rsi
        lea rsi, [rip + s_hello]
        call puts
        mov rax, r15
        call puthex
        call newline

        /* The e820 map. */
        movzx r12d, byte ptr [r15 + BOOT_PARAMS_E820_ENTRIES]
        lea r13, [r15 + BOOT_PARAMS_E820_TABLE]
1:      test r12, r12
        jz 2f
        lea rsi, [rip + s_e820]
        call puts
        mov rax, [r13]
        call puthex
        call space
        mov rax, [r13 + 8]
        call puthex
        call space
        mov eax, [r13 + 16]
        call puthex
        call newline
        add r13, 20
        dec r12
        jmp 1b
2:
        /* The command line. */
        lea rsi, [rip + s_cmdline]
        call puts
        mov esi, [r15 + HDR_CMD_LINE_PTR]
        mov r14, rsi
        call puts
        call newline

        /* The initramfs and its magic. */
        lea rsi, [rip + s_initrd]
        call puts
        mov eax, [r15 + HDR_RAMDISK_IMAGE]
        call puthex
        call space
        mov eax, [r15 + HDR_RAMDISK_SIZE]
        call puthex
        call newline
        mov eax, [r15 + HDR_RAMDISK_SIZE]
        cmp eax, 6
        jb 3f
        mov edi, [r15 + HDR_RAMDISK_IMAGE]
        lea rsi, [rip + s_newc]
        mov ecx, 6
        repe cmpsb
        jne 3f
        lea rsi, [rip + s_magic_ok]
        jmp 4f
3:      lea rsi, [rip + s_magic_bad]
4:      call puts

        /* Modes for the failure tests. */
        mov rdi, r14
        lea rsi, [rip + s_mode_silent]
        call find
        test rax, rax
        jnz silent
        mov rdi, r14
        lea rsi, [rip + s_mode_badinsn]
        call find
        test rax, rax
        jnz badinsn
        mov rdi, r14
        lea rsi, [rip + s_mode_wait]
        call find
        mov r13, rax                    /* r13 != 0: wait mode */

        /* The exit status to report: testguest.exit=N, default 0. */
        mov rdi, r14
        lea rsi, [rip + s_exit_key]
        call find
        xor ebx, ebx
        test rax, rax
        jz 6f
5:      movzx ecx, byte ptr [rax]
        sub ecx, '0'
        cmp ecx, 9
        ja 6f
        imul ebx, ebx, 10
        add ebx, ecx
        inc rax
        jmp 5b
6:
        call setup_interrupts
        /* Ready{version 1} */
        lea rsi, [rip + msg_ready]
        mov ecx, 5
        call send_frame
        lea rsi, [rip + s_sent_ready]
        call puts

        /* Sleep until a valid Start frame has arrived. `sti; hlt` is
         * atomic with respect to interrupts, so no wakeup is lost. */
wait_start:
        cli
        call find_start
        test rax, rax
        jnz got_start
        sti
        hlt
        jmp wait_start

got_start:
        lea rsi, [rip + s_got_start]
        call puts
        lea rsi, [rip + msg_started]
        mov ecx, 9
        call send_frame
        test r13, r13
        jnz serve
exit_code:
        /* Exited{id 0, Code(ebx)} */
        lea rdi, [TXBUF]
        mov byte ptr [rdi], 0x0c
        mov dword ptr [rdi + 1], 0
        mov byte ptr [rdi + 5], 0
        mov dword ptr [rdi + 6], ebx
        mov rsi, rdi
        mov ecx, 10
        call send_frame
        lea rsi, [rip + s_exited]
        call puts
        mov eax, ebx
        call puthex
        call newline
reset:
        lea rsi, [rip + s_reset]
        call puts
        mov al, 0xfe
        out 0x64, al
        cli
9:      hlt
        jmp 9b

/* ---- wait mode: answer frames until a signal or the end of stdin ---- */
serve:
        cli
        call next_frame                 /* rax = payload, ecx = its length */
        test rax, rax
        jnz 1f
        sti
        hlt
        jmp serve
1:      sti
        movzx edx, byte ptr [rax]
        cmp dl, 0x03
        je on_exec
        cmp dword ptr [rax + 1], 0      /* the rest: for the main process only */
        jne serve
        cmp dl, 0x06
        je on_signal
        cmp dl, 0x07
        je on_stdin
        cmp dl, 0x0a
        je on_close
        jmp serve                       /* Start (seen already), others */

on_signal:                              /* Exited{0, Signal(sig)} */
        mov r8d, [rax + 5]
        lea rdi, [TXBUF]
        mov byte ptr [rdi], 0x0c
        mov dword ptr [rdi + 1], 0
        mov byte ptr [rdi + 5], 1
        mov dword ptr [rdi + 6], r8d
        mov rsi, rdi
        mov ecx, 10
        call send_frame
        lea rsi, [rip + s_signaled]
        call puts
        jmp reset

on_close:
        lea rsi, [rip + s_stdin_closed]
        call puts
        jmp exit_code

on_stdin:                               /* the same payload as Stdout */
        cld
        mov rsi, rax
        lea rdi, [TXBUF]
        push rcx
        rep movsb
        pop rcx
        lea rsi, [TXBUF]
        mov byte ptr [rsi], 0x08
        call send_frame
        jmp serve

on_exec:
        mov r12d, [rax + 1]             /* the process id */
        lea rdi, [TXBUF]                /* Started{id, pid 2} */
        mov byte ptr [rdi], 0x04
        mov dword ptr [rdi + 1], r12d
        mov dword ptr [rdi + 5], 2
        mov rsi, rdi
        mov ecx, 9
        call send_frame
        lea rdi, [TXBUF]                /* Stdout{id, "exec ok\n"} */
        mov byte ptr [rdi], 0x08
        mov dword ptr [rdi + 1], r12d
        mov rax, [rip + s_exec_ok]
        mov [rdi + 5], rax
        mov rsi, rdi
        mov ecx, 13
        call send_frame
        lea rdi, [TXBUF]                /* Exited{id, Code(3)} */
        mov byte ptr [rdi], 0x0c
        mov dword ptr [rdi + 1], r12d
        mov byte ptr [rdi + 5], 0
        mov dword ptr [rdi + 6], 3
        mov rsi, rdi
        mov ecx, 10
        call send_frame
        lea rsi, [rip + s_exec_done]
        call puts
        jmp serve

silent:
        lea rsi, [rip + s_silent]
        call puts
        cli
8:      hlt
        jmp 8b

badinsn:
        lea rsi, [rip + s_badinsn]
        call puts
        mov rax, cr4
        or rax, 0x600                   /* OSFXSR | OSXMMEXCPT: allow SSE */
        mov cr4, rax
        mov eax, MMIO_HOLE
        paddd xmm0, [rax]               /* MMIO exit KVM cannot emulate */
        lea rsi, [rip + s_badinsn_survived]
        call puts
        jmp reset

/* ---- interrupts: IDT, PIC, COM2 receive ---- */
setup_interrupts:
        /* Every vector gets a gate; exceptions go to exc_handler. */
        lea rdi, [IDT]
        xor ecx, ecx
1:      lea rax, [rip + exc_handler]
        cmp ecx, 32
        jb 2f
        lea rax, [rip + irq_handler]
2:      mov word ptr [rdi], ax
        mov word ptr [rdi + 2], 0x10    /* __BOOT_CS */
        mov word ptr [rdi + 4], 0x8e00  /* present, DPL 0, interrupt gate */
        shr rax, 16
        mov word ptr [rdi + 6], ax
        shr rax, 16
        mov dword ptr [rdi + 8], eax
        mov dword ptr [rdi + 12], 0
        add rdi, 16
        inc ecx
        cmp ecx, 256
        jb 1b
        lea rax, [rip + idtr]
        lidt [rax]
        mov qword ptr [RXLEN], 0

        /* 8259 pair: vectors 0x20/0x28, cascade on IRQ 2, 8086 mode;
         * everything masked except IRQ 3 (COM2). */
        mov al, 0x11
        out 0x20, al
        out 0xa0, al
        mov al, 0x20
        out 0x21, al
        mov al, 0x28
        out 0xa1, al
        mov al, 0x04
        out 0x21, al
        mov al, 0x02
        out 0xa1, al
        mov al, 0x01
        out 0x21, al
        out 0xa1, al
        mov al, 0xf7
        out 0x21, al
        mov al, 0xff
        out 0xa1, al

        /* COM2: DTR|RTS|OUT2 (OUT2 gates the IRQ line), receive interrupt on. */
        mov dx, COM2 + 4
        mov al, 0x0b
        out dx, al
        mov dx, COM2 + 1
        mov al, 0x01
        out dx, al
        ret

exc_handler:
        lea rsi, [rip + s_exception]
        call puts
        jmp reset

irq_handler:
        push rax
        push rcx
        push rdx
        push rdi
1:      mov dx, COM2 + 5                /* LSR: data ready? */
        in al, dx
        test al, 1
        jz 2f
        mov dx, COM2
        in al, dx
        mov rcx, [RXLEN]
        cmp rcx, RXBUF_SIZE
        jae 1b                          /* full: drop */
        lea rdi, [RXBUF]
        mov [rdi + rcx], al
        inc rcx
        mov [RXLEN], rcx
        jmp 1b
2:      mov al, 0x20                    /* EOI to both PICs */
        out 0xa0, al
        out 0x20, al
        pop rdi
        pop rdx
        pop rcx
        pop rax
        iretq

/* find_start: rax = 1 if RXBUF holds a CRC-valid frame of type Start (2). */
find_start:
        push rbx
        push r12
        push r13
        lea rbx, [RXBUF]
        mov r12, [RXLEN]
        xor r13, r13                    /* candidate offset */
1:      lea rax, [r13 + 10]
        cmp rax, r12
        ja 8f                           /* not even a header left */
        lea rdi, [rbx + r13]            /* the candidate frame */
        cmp word ptr [rdi], 0x4b48      /* "HK" */
        jne 7f
        mov ecx, [rdi + 2]
        mov edx, [rdi + 6]
        not edx
        cmp ecx, edx
        jne 7f
        lea rax, [r13 + 14 + rcx]
        cmp rax, r12
        ja 8f                           /* frame not complete yet */
        lea rsi, [rdi + 10]
        push rdi
        push rcx
        call crc32
        pop rcx
        pop rdi
        cmp eax, [rdi + rcx + 10]
        jne 7f
        cmp byte ptr [rdi + 10], 2
        jne 7f
        mov eax, 1
        jmp 9f
7:      inc r13
        jmp 1b
8:      xor eax, eax
9:      pop r13
        pop r12
        pop rbx
        ret

/* next_frame: the next CRC-valid frame from RXPOS on; rax = its payload
 * (0 if none is complete yet), ecx = the payload's length. */
next_frame:
        push rbx
        push r12
        push r13
        lea rbx, [RXBUF]
        mov r12, [RXLEN]
        mov r13, [RXPOS]
1:      lea rax, [r13 + 10]
        cmp rax, r12
        ja 8f
        lea rdi, [rbx + r13]
        cmp word ptr [rdi], 0x4b48      /* "HK" */
        jne 7f
        mov ecx, [rdi + 2]
        mov edx, [rdi + 6]
        not edx
        cmp ecx, edx
        jne 7f
        lea rax, [r13 + 14 + rcx]
        cmp rax, r12
        ja 8f
        lea rsi, [rdi + 10]
        push rdi
        push rcx
        call crc32
        pop rcx
        pop rdi
        cmp eax, [rdi + rcx + 10]
        jne 7f
        lea rax, [r13 + 14 + rcx]
        mov [RXPOS], rax
        lea rax, [rdi + 10]
        jmp 9f
7:      inc r13
        jmp 1b
8:      xor eax, eax
9:      pop r13
        pop r12
        pop rbx
        ret

/* ---- framing: "HK" | len | ~len | payload | crc32 ---- */
/* send_frame: rsi = payload, ecx = length. */
send_frame:
        push rbx
        push r12
        push r13
        mov r12, rsi
        mov r13d, ecx
        mov al, 'H'
        call com2_putc
        mov al, 'K'
        call com2_putc
        mov eax, r13d
        call com2_put32
        mov eax, r13d
        not eax
        call com2_put32
        xor ebx, ebx
1:      cmp ebx, r13d
        jae 2f
        mov al, [r12 + rbx]
        call com2_putc
        inc ebx
        jmp 1b
2:      mov rsi, r12
        mov ecx, r13d
        call crc32
        call com2_put32
        pop r13
        pop r12
        pop rbx
        ret

com2_put32:                             /* eax, little-endian */
        push rbx
        mov ebx, eax
        mov ecx, 4
1:      mov al, bl
        push rcx
        call com2_putc
        pop rcx
        shr ebx, 8
        loop 1b
        pop rbx
        ret

com2_putc:                              /* al; the emulated THR is always empty */
        mov dx, COM2
        out dx, al
        ret

/* crc32: rsi = data, ecx = length -> eax; CRC-32/ISO-HDLC, bitwise. */
crc32:
        mov eax, 0xffffffff
1:      test ecx, ecx
        jz 3f
        movzx edx, byte ptr [rsi]
        xor eax, edx
        mov edx, 8
2:      shr eax, 1
        jnc 4f
        xor eax, 0xedb88320
4:      dec edx
        jnz 2b
        inc rsi
        dec ecx
        jmp 1b
3:      not eax
        ret

/* ---- COM1 text output ---- */
puts:                                   /* rsi = NUL-terminated string */
        mov dx, COM1
1:      lodsb
        test al, al
        jz 2f
        out dx, al
        jmp 1b
2:      ret

puthex:                                 /* rax as 0x + 16 hex digits */
        push rbx
        mov rbx, rax
        mov dx, COM1
        mov al, '0'
        out dx, al
        mov al, 'x'
        out dx, al
        mov ecx, 16
1:      rol rbx, 4
        mov al, bl
        and al, 0xf
        add al, '0'
        cmp al, '9'
        jbe 2f
        add al, 'a' - '9' - 1
2:      out dx, al
        loop 1b
        pop rbx
        ret

space:
        mov al, ' '
        jmp putc1
newline:
        mov al, '\n'
putc1:
        mov dx, COM1
        out dx, al
        ret

/* find: rdi = haystack, rsi = needle (both NUL-terminated);
 * rax = address just past the first match, or 0. */
find:
1:      cmp byte ptr [rdi], 0
        je 4f
        xor ecx, ecx
2:      mov al, [rsi + rcx]
        test al, al
        jz 3f
        cmp al, [rdi + rcx]
        jne 5f
        inc rcx
        jmp 2b
3:      lea rax, [rdi + rcx]
        ret
5:      inc rdi
        jmp 1b
4:      xor eax, eax
        ret

        .section .rodata
idtr:   .word 256 * 16 - 1
        .quad IDT
msg_ready:      .byte 0x01, 1, 0, 0, 0
msg_started:    .byte 0x04, 0, 0, 0, 0, 1, 0, 0, 0
s_hello:        .asciz "testguest: 64-bit entry, boot_params at "
s_e820:         .asciz "testguest: e820 "
s_cmdline:      .asciz "testguest: cmdline: "
s_initrd:       .asciz "testguest: initramfs "
s_newc:         .ascii "070701"
s_magic_ok:     .asciz "testguest: initramfs magic 070701 ok\n"
s_magic_bad:    .asciz "testguest: initramfs magic missing\n"
s_mode_silent:  .asciz "testguest.mode=silent"
s_mode_badinsn: .asciz "testguest.mode=badinsn"
s_mode_wait:    .asciz "testguest.mode=wait"
s_exec_ok:      .ascii "exec ok\n"
s_signaled:     .asciz "testguest: got Signal, sent Exited\n"
s_stdin_closed: .asciz "testguest: stdin closed\n"
s_exec_done:    .asciz "testguest: answered Exec\n"
s_exit_key:     .asciz "testguest.exit="
s_sent_ready:   .asciz "testguest: sent Ready, waiting for Start on COM2\n"
s_got_start:    .asciz "testguest: got Start\n"
s_exited:       .asciz "testguest: sent Exited, status "
s_reset:        .asciz "testguest: reset via i8042\n"
s_silent:       .asciz "testguest: silent mode, never ready\n"
s_badinsn:      .asciz "testguest: bad instruction mode\n"
s_badinsn_survived: .asciz "testguest: the MMIO paddd was emulated?!\n"
s_exception:    .asciz "testguest: unexpected exception\n"
