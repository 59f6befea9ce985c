// The supervisor's "Reassign" dialog for a waiting caller (queued or ringing):
// `call.reassign {session_id, department_id, staff_id?}` — another department's queue
// and, optionally, one available agent of that department now. The choices follow the
// live dashboard while the dialog is open; a caller who stops waiting meanwhile is said
// so and cannot be sent.
import { el, formatDuration } from "../shared/dom.js";

const WAITING = new Set(["queued", "ringing"]);

export class ReassignDialog {
  /**
   * ctx: {s(key, vars), departmentName(id), serviceName(id), call(sid), departments(),
   *       agents(), serverNow(), request(event, payload), errorString(err), onDone(ack, call)}.
   * dom: {dialog, form, info, department, staff, error, submit, cancel}.
   */
  constructor(ctx, dom) {
    this.ctx = ctx;
    this.dom = dom;
    this.sessionId = null;
    this.sending = false;
    this.errorKey = null;
    this.errorText = null;
    this.departmentSignature = "";
    this.staffSignature = "";
    dom.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    dom.cancel.addEventListener("click", () => this.close());
    dom.department.addEventListener("change", () => {
      this.staffSignature = "";
      this.renderStaff();
    });
    dom.dialog.addEventListener("close", () => this.forget());
  }

  get isOpen() {
    return this.sessionId !== null;
  }

  open(sessionId) {
    const call = this.ctx.call(sessionId);
    if (!call || !WAITING.has(call.state)) return;
    this.sessionId = sessionId;
    this.sending = false;
    this.setError(null);
    this.departmentSignature = "";
    this.staffSignature = "";
    this.dom.dialog.dataset.sessionId = sessionId;
    this.render();
    this.dom.department.value = call.department_id;
    this.renderStaff();
    if (!this.dom.dialog.open) this.dom.dialog.showModal();
    this.dom.department.focus();
  }

  close() {
    if (this.dom.dialog.open) this.dom.dialog.close();
    this.forget();
  }

  forget() {
    this.sessionId = null;
    this.sending = false;
    delete this.dom.dialog.dataset.sessionId;
    this.dom.dialog.dataset.state = "closed";
  }

  setError(key, text = null) {
    this.errorKey = key;
    this.errorText = text;
    this.dom.error.hidden = !key && !text;
    this.dom.error.textContent = key ? this.ctx.s(key) : text || "";
    if (key) this.dom.error.dataset.key = key;
    else delete this.dom.error.dataset.key;
  }

  /** Redraw (a new snapshot, or the language changed). */
  render() {
    if (!this.isOpen) return;
    const { s, departmentName, serviceName } = this.ctx;
    const call = this.ctx.call(this.sessionId);
    const waiting = Boolean(call && WAITING.has(call.state));
    if (call) {
      const waited = Math.max(0, this.ctx.serverNow() - Number(call.since || 0));
      this.dom.info.textContent = [
        departmentName(call.department_id),
        serviceName(call.service_id),
        call.kiosk_id || "",
        s("reassignWaited", { time: formatDuration(waited) }),
      ]
        .filter(Boolean)
        .join(" · ");
    }
    this.renderDepartments();
    this.renderStaff();
    if (!waiting && !this.sending) this.setError("reassignGone");
    else if (this.errorKey) this.setError(this.errorKey);
    this.dom.dialog.dataset.state = this.sending ? "sending" : waiting ? "open" : "gone";
    this.dom.submit.disabled = this.sending || !waiting;
    this.dom.submit.textContent = s(this.sending ? "reassignSending" : "reassignSubmit");
  }

  /** Rebuild a <select>'s options only when they changed (an open list stays put). */
  fill(select, options, signatureKey) {
    const signature = JSON.stringify(options);
    if (this[signatureKey] === signature) return;
    this[signatureKey] = signature;
    const previous = select.value;
    select.replaceChildren(
      ...options.map((o) => el("option", { value: o.value, disabled: o.disabled || null }, o.label)),
    );
    const keep = options.find((o) => o.value === previous && !o.disabled);
    select.value = keep ? previous : options.length ? options[0].value : "";
  }

  renderDepartments() {
    const { s, departmentName } = this.ctx;
    const agents = this.ctx.agents();
    const options = this.ctx.departments().map((d) => ({
      value: d.id,
      label: s("reassignDepartmentOption", {
        name: departmentName(d.id),
        available: agents.filter((a) => a.state === "available" && (a.departments || []).includes(d.id)).length,
        waiting: Number(d.waiting) || 0,
      }),
    }));
    this.fill(this.dom.department, options, "departmentSignature");
  }

  renderStaff() {
    const { s } = this.ctx;
    const department = this.dom.department.value;
    const options = [{ value: "", label: s("reassignAnyone") }];
    for (const agent of this.ctx.agents()) {
      if (!(agent.departments || []).includes(department)) continue;
      options.push({
        value: agent.staff_id,
        label: s("reassignAgentOption", {
          name: agent.display_name || agent.staff_id,
          state: s(`agent.${agent.state}`),
        }),
        disabled: agent.state !== "available",
      });
    }
    this.fill(this.dom.staff, options, "staffSignature");
  }

  async submit() {
    if (!this.isOpen || this.sending) return;
    const sessionId = this.sessionId;
    const call = this.ctx.call(sessionId);
    if (!call || !WAITING.has(call.state)) {
      this.render();
      return;
    }
    const payload = { session_id: sessionId, department_id: this.dom.department.value };
    if (this.dom.staff.value) payload.staff_id = this.dom.staff.value;
    this.sending = true;
    this.setError(null);
    this.render();
    try {
      const ack = await this.ctx.request("call.reassign", payload);
      if (this.sessionId !== sessionId) return;
      this.close();
      this.ctx.onDone(ack, payload);
    } catch (err) {
      if (this.sessionId !== sessionId) return;
      this.sending = false;
      this.dom.error.dataset.code = err.code || "";
      if (err.code === "conflict") this.setError("reassignConflict");
      else this.setError(null, this.ctx.errorString(err));
      this.render();
    }
  }
}
