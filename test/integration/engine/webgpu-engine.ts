/**
 * Test helper: the webgpu engine through Dawn. Without a GPU (here, CI) Dawn's OpenGL ES backend
 * over Mesa llvmpipe (`FEDJOINT_WEBGPU_ADAPTER=compatibility`, the default of these tests); on a
 * GPU machine set `FEDJOINT_WEBGPU_ADAPTER=default` to run the same tests on Vulkan. A missing
 * package or adapter is a failure with a one-line reason, never a skip.
 */
import { type EngineInfo, initEngine } from "../../../src/model/engine/backend.js";

export const WEBGPU_TEST_ADAPTER = process.env.FEDJOINT_WEBGPU_ADAPTER ?? "compatibility";

export async function webgpuEngine(): Promise<EngineInfo> {
  process.env.FEDJOINT_WEBGPU_ADAPTER = WEBGPU_TEST_ADAPTER;
  try {
    return await initEngine("webgpu");
  } catch (err) {
    throw new Error(
      `the webgpu engine is required for this test (npm optional dependencies webgpu and @tensorflow/tfjs-backend-webgpu; without a GPU, Debian packages libegl1 libegl-mesa0 libgl1-mesa-dri libgbm1; FEDJOINT_WEBGPU_ADAPTER=${WEBGPU_TEST_ADAPTER}, CI=${process.env.CI ?? "unset"}): ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}
