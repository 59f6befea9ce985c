// The sign-in form of the staff console and the supervisor page: username and password
// to POST /api/v1/auth/login, refused unless the account has the page's role; errors
// shown by their string key (data-i18n: they follow a language switch).
import { login } from "../shared/api.js";
import { showOnly } from "../shared/dom.js";
import { t } from "../shared/i18n.js";

export class SignInForm {
  /**
   * @param {{dom: any, role: string, keys: {failed: string, error: string, wrongRole: string,
   *   signingIn: string, rateLimited: string}, onSignedIn: Function, setStatus: Function,
   *   beforeSubmit?: Function}} options
   * dom: {loginView, workView, loginForm, username, password, loginSubmit, loginError,
   * logout, signedIn}; keys: full string keys; onSignedIn(answer, username) once the
   * account is the page's; setStatus(key | null).
   */
  constructor({ dom, role, keys, onSignedIn, setStatus, beforeSubmit = () => {} }) {
    this.dom = dom;
    this.role = role;
    this.keys = keys;
    this.onSignedIn = onSignedIn;
    this.setStatus = setStatus;
    this.beforeSubmit = beforeSubmit;
    dom.loginForm.addEventListener("submit", (event) => this.submit(event));
  }

  /** The form, instead of the work view, with an error when `errorKey` is given. */
  show(errorKey = null) {
    const { dom } = this;
    showOnly({ login: dom.loginView, work: dom.workView }, "login");
    dom.logout.hidden = true;
    dom.signedIn.hidden = true;
    dom.loginSubmit.disabled = false;
    this.showError(errorKey);
    dom.username.focus();
  }

  showError(key) {
    const error = this.dom.loginError;
    error.hidden = !key;
    error.textContent = key ? t(key) : "";
    if (key) error.dataset.i18n = key;
    else delete error.dataset.i18n;
  }

  async submit(event) {
    event.preventDefault();
    this.beforeSubmit();
    const { dom, keys } = this;
    const username = dom.username.value.trim();
    const password = dom.password.value;
    if (!username || !password) {
      this.showError(keys.failed);
      return;
    }
    dom.loginSubmit.disabled = true;
    this.showError(null);
    this.setStatus(keys.signingIn);
    try {
      const answer = await login(username, password);
      if (answer.role !== this.role) {
        this.show(keys.wrongRole);
        this.setStatus(null);
        return;
      }
      dom.password.value = "";
      this.onSignedIn(answer, username);
    } catch (err) {
      this.show(err.status === 401 ? keys.failed
        : err.code === "rate_limited" ? keys.rateLimited : keys.error);
      this.setStatus(null);
    }
  }
}
