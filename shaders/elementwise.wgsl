// Indexing shared by the one-dimensional element-wise kernels (appended to their modules).
//
// The kernels view their f32 buffers as vec4 (the host pads every buffer to 16 bytes, so the last,
// partial vec4 is in bounds; what lands in the padding is never read as data). A workgroup of LANES
// invocations owns a block of LANES·PER_LANE consecutive vec4s; invocation `lane` takes vec4s
// block + k·LANES + lane for k < PER_LANE. Neighbouring lanes touch neighbouring memory (coalesced on a
// GPU), and on lavapipe, where every buffer access of every lane costs the same whatever its width and
// each workgroup launch costs microseconds, vec4s and blocks of 512 measured 1.8× faster than one f32
// per invocation. The host sizes the grid to match (`ELEMENTWISE_BLOCK`).

const LANES: u32 = 64u;
const PER_LANE: u32 = 8u;

// vec4s covering n floats.
fn vec4_count(n: u32) -> u32 {
    return (n + 3u) / 4u;
}

// Where an invocation stands in a grid folded into two dimensions.
struct Invocation {
    @builtin(workgroup_id) group: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lane: u32,
}

// The workgroup's linear index.
fn workgroup_index(at: Invocation) -> u32 {
    return at.group.x + at.group.y * at.groups.x;
}

// Element (vec4) k of invocation `at`.
fn element(at: Invocation, k: u32) -> u32 {
    return workgroup_index(at) * (LANES * PER_LANE) + k * LANES + at.lane;
}
