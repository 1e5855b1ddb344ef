//! `nabla info`: the GPU adapters found, with their limits and subgroup sizes.

use anyhow::Result;

use nabla::gpu::context;
/// Prints every adapter wgpu finds, best first, with the limits nabla cares about.
pub fn run() -> Result<()> {
    let adapters = context::list_adapters();
    if adapters.is_empty() {
        println!("no GPU adapter found (the CPU backend still works: --device cpu)");
    }
    for (i, a) in adapters.iter().enumerate() {
        let info = a.get_info();
        let l = a.limits();
        println!("{i}: {}", context::describe(&info));
        println!(
            "   max storage binding {} MiB, workgroup memory {} KiB, {} invocations per workgroup, \
             subgroups {}..{}{}",
            l.max_storage_buffer_binding_size >> 20,
            l.max_compute_workgroup_storage_size >> 10,
            l.max_compute_invocations_per_workgroup,
            info.subgroup_min_size,
            info.subgroup_max_size,
            if a.features().contains(wgpu::Features::SUBGROUP) {
                ""
            } else {
                " (no subgroup ops)"
            }
        );
    }
    println!(
        "choose with {}=<index or part of the name>; `--device auto` skips software adapters",
        context::ADAPTER_ENV
    );
    Ok(())
}
