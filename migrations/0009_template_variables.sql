-- The input variables a template version declares (the `variable` blocks of
-- its Terraform files), as a JSON list of {name, required}; read when the
-- version is created. NULL for versions created before: their parameters are
-- not checked.
ALTER TABLE template_versions ADD COLUMN variables TEXT;
