# A minimal orgsync template: Terraform's built-in `terraform_data` resource
# only, so it needs no provider download and runs offline in a second.
#
# Each `variable` below is a parameter of the workspaces made from this
# template (`orgsync create dev --template hello --parameter greeting=hi`).
# orgsync reads these blocks when the template is pushed and refuses, before
# any build, a parameter the template does not declare or a missing one
# that has no default.

variable "greeting" {
  type        = string
  description = "What the workspace says."
  default     = "hello"
}

variable "size" {
  type        = string
  description = "A label for the workspace's size."
  default     = "small"
}

# orgsync passes these to every build (TF_VAR_orgsync_*); declaring them is
# optional.
variable "orgsync_transition" {
  type    = string
  default = "start"
}

variable "orgsync_workspace_name" {
  type    = string
  default = ""
}

variable "orgsync_workspace_owner" {
  type    = string
  default = ""
}

# Kept while the workspace exists (stop keeps it, delete destroys it).
resource "terraform_data" "home" {
  input = "${var.orgsync_workspace_owner}/${var.orgsync_workspace_name}"
}

# Exists only while the workspace is started.
resource "terraform_data" "compute" {
  count = var.orgsync_transition == "start" ? 1 : 0
  input = "${var.greeting} from a ${var.size} workspace"
}

output "message" {
  value = var.orgsync_transition == "start" ? terraform_data.compute[0].output : "stopped"
}
