!> Stand-in worker for two members: gets WORKER_GYRE_<m>_<F>, checks every value, sends back value + 0.5.
program worker
   use standin_common
   implicit none
   integer, parameter :: nm = 2
   integer :: comp_id, comm, part_id, j0, nj, ierr, f, kt, info, i, j, l, m, nbad, nrecv
   integer :: id_in(nf, nm), id_out(nf, nm)
   character(len=64) :: nm_in
   real(8), allocatable :: a(:,:)
   call oasis_init_comp(comp_id, 'worker', ierr)
   call oasis_get_localcomm(comm, ierr)
   call box(comm, part_id, j0, nj)
   do m = 1, nm
      do f = 1, nf
         write(nm_in, '(a,i0,a)') 'WORKER_GYRE_', m, '_'//trim(fname(f))
         call oasis_def_var(id_in(f, m), trim(nm_in), part_id, [1, flev(f)], OASIS_In, [1, nx*nj], OASIS_Real, ierr)
         call oasis_def_var(id_out(f, m), trim(nm_in)//'_EMU', part_id, [1, flev(f)], OASIS_Out, [1, nx*nj], OASIS_Real, ierr)
         if (id_in(f, m) < 0 .or. id_out(f, m) < 0) print *, 'WORKER: NOT IN NAMCOUPLE ', trim(nm_in)
      end do
   end do
   call oasis_enddef(ierr)
   nbad = 0; nrecv = 0
   do kt = 0, nsteps - 1
      do m = 1, nm
         do f = 1, nf
            allocate(a(nx*nj, flev(f)))
            a = -1
            call oasis_get(id_in(f, m), kt*dt, a, info)
            if (info /= 0) then
               nrecv = nrecv + 1
               do l = 1, flev(f); do j = 1, nj; do i = 1, nx
                  if (a(i + (j-1)*nx, l) /= val(m, f, l, i, j0 + j, kt)) nbad = nbad + 1
               end do; end do; end do
            end if
            a = a + 0.5d0
            call oasis_put(id_out(f, m), kt*dt, a, info)
            deallocate(a)
         end do
      end do
   end do
   print '(a,i0,a,i0)', 'worker receptions: ', nrecv, ' wrong values: ', nbad
   call oasis_terminate(ierr)
end program
